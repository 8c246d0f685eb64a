"""The reliability suite's figures: per item, how many cases were tried and how many held as promised.

A test either declares its item with ``@pytest.mark.figure("R2 Task faults")`` (each test case then
counts once: tried, and ok if it passed) or calls ``record(item, tried, ok)`` for the cases it
generates itself. Figures go as JSON lines to the file named by ``LUTE_RELIABILITY_FIGURES``
(set by tests/reliability/conftest.py for the session), so subprocesses can add theirs too.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Tuple

ENV = "LUTE_RELIABILITY_FIGURES"


def record(item: str, tried: int, ok: int, note: str = "") -> None:
    """Add ``tried`` cases of ``item``, ``ok`` of which held as promised."""
    path = os.environ.get(ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"item": item, "tried": tried, "ok": ok, "note": note}) + "\n")


def totals(path: Path) -> Dict[str, Tuple[int, int]]:
    """Return ``{item: (tried, ok)}`` from a figures file, items in the order R1, R2, …."""
    sums: Dict[str, List[int]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            tried_ok = sums.setdefault(str(entry["item"]), [0, 0])
            tried_ok[0] += int(entry["tried"])
            tried_ok[1] += int(entry["ok"])
    return OrderedDict((k, (v[0], v[1])) for k, v in sorted(sums.items()))


def table(path: Path) -> str:
    """Return the figures as a plain-text table (what `just reliability` prints)."""
    rows = totals(path)
    if not rows:
        return ""
    width = max(len(item) for item in rows)
    lines = [f"{'item':<{width}}  {'cases tried':>11}  {'as promised':>11}", "-" * (width + 26)]
    for item, (tried, ok) in rows.items():
        mark = "" if ok == tried else "   <-- NOT AS PROMISED"
        lines.append(f"{item:<{width}}  {tried:>11}  {ok:>11}{mark}")
    return "\n".join(lines)
