"""The figures of the reliability suite: one JSON line per item, appended where LUTE_RELIABILITY_FIGURES says.

``just reliability`` points the variable at a file and prints the table from it; run alone, a test
only prints its line.
"""

from __future__ import annotations

import json
import os


def record_figure(item: str, tried: int, ok: int) -> None:
    """Print one item's figures and append them to ``$LUTE_RELIABILITY_FIGURES`` when it is set."""
    line = json.dumps({"item": item, "tried": tried, "ok": ok})
    print(line)
    target = os.environ.get("LUTE_RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as figures:
            figures.write(line + "\n")
