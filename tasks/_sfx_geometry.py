"""CrystFEL geometry files, as far as peak finding needs them: each panel's pixels and their radii.

Owns parsing the ``panel/key = value`` lines of a CrystFEL geometry file (global defaults, then
per-panel overrides; ``;`` comments) into panels, and the radius map peakfinder8 bins its local
background by: each pixel's distance (in pixels) from the beam, in the layout of the data array
(``min_fs..max_fs`` x ``min_ss..max_ss`` of the CXI slab). Pure: numpy only, imported inside the
image. Must not read detector data or know about psana.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Tuple

_VECTOR = re.compile(r"([+-]?\s*[0-9.]*(?:[eE][+-]?[0-9]+)?)\s*([xyz])")
_PANEL_KEYS = ("min_fs", "max_fs", "min_ss", "max_ss", "fs", "ss", "corner_x", "corner_y")


@dataclass(frozen=True)
class Panel:
    """One panel: its rectangle in the data array and where its first pixel sits (pixel units)."""

    name: str
    min_fs: int
    max_fs: int
    min_ss: int
    max_ss: int
    fs: Tuple[float, float]
    ss: Tuple[float, float]
    corner_x: float
    corner_y: float


def parse_vector(text: str) -> Tuple[float, float]:
    """Return the (x, y) components of a CrystFEL direction such as ``+0.0012x -1.0y`` or ``-y``."""
    x = y = 0.0
    for coeff, axis in _VECTOR.findall(text.replace(" ", "")):
        value = float(coeff) if coeff not in ("", "+", "-") else (-1.0 if coeff == "-" else 1.0)
        if axis == "x":
            x += value
        elif axis == "y":
            y += value
    return x, y


def parse_geometry(text: str) -> List[Panel]:
    """Return the panels of a CrystFEL geometry file, in file order."""
    defaults: Dict[str, str] = {}
    panels: Dict[str, Dict[str, str]] = {}
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if "/" in key:
            panel, field = key.split("/", 1)
            if not panel.startswith(("bad", "rigid_group", "rigid_groups")):
                panels.setdefault(panel, {})[field] = value
        else:
            defaults[key] = value
    found: List[Panel] = []
    for name, fields in panels.items():
        merged = {**defaults, **fields}
        missing = [k for k in _PANEL_KEYS if k not in merged]
        if missing:
            raise ValueError(f"geometry panel {name!r} lacks {', '.join(missing)}")
        found.append(
            Panel(
                name=name,
                min_fs=int(merged["min_fs"]),
                max_fs=int(merged["max_fs"]),
                min_ss=int(merged["min_ss"]),
                max_ss=int(merged["max_ss"]),
                fs=parse_vector(merged["fs"]),
                ss=parse_vector(merged["ss"]),
                corner_x=float(merged["corner_x"]),
                corner_y=float(merged["corner_y"]),
            )
        )
    if not found:
        raise ValueError("the geometry file defines no panel (lines like p0/min_fs = 0)")
    return found


def radius_map(panels: List[Panel]):  # type: ignore[no-untyped-def]
    """Return each pixel's distance from the beam (pixels), shaped like the slab the panels tile."""
    import numpy as np

    ss_size = max(p.max_ss for p in panels) + 1
    fs_size = max(p.max_fs for p in panels) + 1
    radius = np.zeros((ss_size, fs_size), dtype=np.float32)
    for p in panels:
        ss, fs = np.mgrid[0 : p.max_ss - p.min_ss + 1, 0 : p.max_fs - p.min_fs + 1]
        x = p.corner_x + fs * p.fs[0] + ss * p.ss[0]
        y = p.corner_y + fs * p.fs[1] + ss * p.ss[1]
        radius[p.min_ss : p.max_ss + 1, p.min_fs : p.max_fs + 1] = np.hypot(x, y)
    return radius
