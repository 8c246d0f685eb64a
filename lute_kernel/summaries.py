"""Turning a run's result into what is recorded and posted: summary text and a storable payload.

Owns the upstream convention that a dict summary is stored as ``"key: value;key: value"`` and the
reduction of payloads the DB cannot hold (arrays) to a description. Pure.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional


def summary_text(summary: Any) -> str:
    """Return the DB form of a summary: dicts become ``"k: v;k2: v2"``, None becomes ``""``."""
    if summary is None:
        return ""
    if isinstance(summary, Mapping):
        return ";".join(f"{key}: {value}" for key, value in summary.items())
    return str(summary)


def summary_dict(summary: Any) -> Optional[Dict[str, Any]]:
    """Return the summary as run parameters for the eLog, or None when it is not a dict."""
    return dict(summary) if isinstance(summary, Mapping) else None


def describe_array(value: Any) -> str:
    """Return ``"ndarray float64 (8000,)"`` for an array."""
    return f"ndarray {value.dtype} {tuple(value.shape)}"


def payload_for_db(payload: Any) -> Any:
    """Return the payload with arrays replaced by descriptions, JSON-able."""
    if hasattr(payload, "__array_interface__") and hasattr(payload, "dtype"):
        return describe_array(payload)
    if isinstance(payload, Mapping):
        return {str(k): payload_for_db(v) for k, v in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [payload_for_db(v) for v in payload]
    try:
        json.dumps(payload)
    except (TypeError, ValueError):
        return str(payload)
    return payload


def merge_summaries(summary: Any, extra: Mapping[str, Any]) -> Any:
    """Add tasklet results to a summary (a str summary keeps its text under ``"summary"``)."""
    if not extra:
        return summary
    merged: Dict[str, Any] = (
        dict(summary) if isinstance(summary, Mapping) else ({"summary": summary} if summary else {})
    )
    merged.update(extra)
    return merged
