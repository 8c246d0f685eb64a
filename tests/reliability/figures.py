"""Figures of the reliability suites: one JSON line per item, appended to $LUTE_RELIABILITY_FIGURES.

``just reliability`` sets the variable and prints the table from the lines; without it, nothing is
written.
"""

from __future__ import annotations

import json
import os


def record(item: str, tried: int, ok: int) -> None:
    """Append ``{"item": item, "tried": tried, "ok": ok}`` to the figures file, when one is named."""
    path = os.environ.get("LUTE_RELIABILITY_FIGURES")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"item": item, "tried": tried, "ok": ok}) + "\n")
