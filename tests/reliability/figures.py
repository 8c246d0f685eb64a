"""The figures a reliability suite reports: cases tried and cases that held as promised.

Each suite calls ``record`` once per item; with ``LUTE_RELIABILITY_FIGURES`` set, a JSON line
``{"item": …, "tried": n, "ok": m}`` is appended to that file (``just reliability`` prints the
table from it). Always printed too, so a plain pytest run shows the counts with ``-s``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional


def record(item: str, tried: int, ok: int, detail: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Append one item's counts to ``$LUTE_RELIABILITY_FIGURES`` (if set) and return them."""
    line: Dict[str, Any] = {"item": item, "tried": tried, "ok": ok}
    if detail:
        line["detail"] = detail
    path = os.environ.get("LUTE_RELIABILITY_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
    print(f"reliability: {item}: {ok} of {tried} cases as promised")
    return line
