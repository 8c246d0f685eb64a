"""Built-in tasklets: filesystem chores Tasks commonly need on the host before or after they run.

Each function is small, idempotent where it can be, and returns something worth logging
(a dict is merged into the run's summary by the executor).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, List


def make_dirs(*paths: str) -> Dict[str, str]:
    """Create folders (and parents) that a Task writes into."""
    for path in paths:
        os.makedirs(path, exist_ok=True)
    return {"made_dirs": ",".join(paths)}


def concat_files(out_file: str, *in_files: str) -> Dict[str, str]:
    """Concatenate files (e.g. per-rank stream files) into ``out_file``."""
    with open(out_file, "wb") as out:
        for name in in_files:
            with open(name, "rb") as part:
                shutil.copyfileobj(part, out)
    return {"concatenated": out_file}


def count_lines(path: str) -> Dict[str, int]:
    """Count a text output's lines (a cheap sanity check recorded in the summary)."""
    with open(path, "rb") as handle:
        return {f"lines[{Path(path).name}]": sum(1 for _ in handle)}


def list_files(folder: str, pattern: str = "*") -> List[str]:
    """Return the files in ``folder`` matching ``pattern``, sorted."""
    return sorted(str(p) for p in Path(folder).glob(pattern))
