"""Tasklets of the SFX chain: summaries parsed from CrystFEL's outputs, dimple's density viewer.

Host functions run after a Task (see ``lute_kernel.tasklets``), with upstream LUTE's names and
arguments (``lute/tasks/tasklets.py``): ``indexamajig_summary_indexing_rate`` counts lattices and
chunks in a stream, ``compare_hkl_fom_summary`` reads compare_hkl's shell file, and
``setup_dimple_uglymol`` puts dimple's map and model next to an HTML viewer. Each returns a dict
the executor merges into the run's summary. Pure file reading and writing: no subprocess, no
network, no plots (the eLog plots upstream makes need holoviews/panel, which the kernel lacks).
"""

from __future__ import annotations

import os
import shutil
from typing import Dict, List, Optional, Tuple

CRYSTAL_MARKER = "Cell parameters"  # one line per indexed lattice (upstream greps this)
CHUNK_END = "----- End chunk -----"


def indexamajig_summary_indexing_rate(stream_file: str) -> Dict[str, str]:
    """Return the lattices indexed and the indexing rate (lattices per chunk) of a stream file.

    A stream holds one chunk per image (``----- Begin chunk -----`` … ``----- End chunk -----``)
    and, inside it, one ``--- Begin crystal`` block with a ``Cell parameters`` line per lattice.
    """
    lattices = chunks = 0
    with open(stream_file, errors="replace") as stream:
        for line in stream:
            if line.startswith(CRYSTAL_MARKER):
                lattices += 1
            elif line.startswith(CHUNK_END):
                chunks += 1
    rate = lattices / chunks if chunks else 0.0
    return {"Number of lattices indexed": str(lattices), "Indexing rate": f"{rate:.2f}"}


def parse_shell_file(text: str) -> Tuple[str, List[Tuple[float, float, int, float]]]:
    """Return compare_hkl's figure of merit and its shells: (1/d centre [nm-1], value, nref, d [A]).

    The shell file starts with a header (``1/d centre  Rsplit/%  nref  d / A  Min 1/nm  Max 1/nm``)
    followed by one row of six numbers per resolution shell.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the shell file is empty")
    header = lines[0].split()
    if len(header) < 4 or header[:2] != ["1/d", "centre"]:
        raise ValueError(f"not a compare_hkl shell file (header {lines[0].strip()!r})")
    fom = header[2]
    shells: List[Tuple[float, float, int, float]] = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if len(fields) < 4:
            raise ValueError(f"shell file line {number}: expected 6 columns, got {line.strip()!r}")
        try:
            shells.append((float(fields[0]), float(fields[1]), int(fields[2]), float(fields[3])))
        except ValueError:
            raise ValueError(f"shell file line {number}: not numbers: {line.strip()!r}") from None
    return fom, shells


def compare_hkl_fom_summary(shell_file: str, figure_display_name: str) -> Dict[str, str]:
    """Summarise compare_hkl's figure of merit in resolution shells.

    ``figure_display_name`` (upstream: the eLog tab of the plot, ``r<run>/<fom>``) names the
    entries. The overall value compare_hkl prints is not in the shell file: the summary gives the
    reflection-weighted mean over the shells, the outermost shell and the resolution range.
    """
    with open(shell_file) as handle:
        fom, shells = parse_shell_file(handle.read())
    if not shells:
        return {fom: "no shells"}
    counted = [(value, nref) for _, value, nref, _ in shells if nref > 0]
    total = sum(nref for _, nref in counted)
    mean = sum(value * nref for value, nref in counted) / total if total else float("nan")
    outer = shells[-1]
    return {
        fom: f"{mean:.4g}",
        f"{fom} (outer shell, {outer[3]:.2f} A)": f"{outer[1]:.4g}",
        "Reflections in shells": str(sum(nref for _, _, nref, _ in shells)),
        "Resolution range (A)": f"{shells[0][3]:.2f}-{outer[3]:.2f}",
        "Figure of merit plot": figure_display_name,
    }


UGLYMOL_JS = "https://cdn.jsdelivr.net/gh/uglymol/uglymol@master/uglymol.js"  # the files upstream downloads
MTZ_JS = "https://cdn.jsdelivr.net/gh/uglymol/uglymol.github.io@master/wasm/mtz.js"

_REPORT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8"><title>{name} - dimple (UglyMol)</title>
<style>
body {{ margin: 0; background: #000; }}
#viewer {{ position: absolute; inset: 0; }}
#hud {{ position: absolute; top: 8px; left: 50%; transform: translateX(-50%); color: #ddd; font: sans-serif; }}
</style>
<script src="{uglymol}"></script><script src="{mtz}"></script>
</head>
<body>
<div id="viewer"></div><header id="hud">{name}: final.pdb and the maps of final.mtz</header>
<script>
  var viewer = new UM.Viewer({{viewer: "viewer", hud: "hud"}});
  viewer.load_pdb("final.pdb");
  GemmiMtz().then(function (Module) {{ UM.load_maps_from_mtz(Module, viewer, "final.mtz"); }});
</script>
</body>
</html>
"""


def density_display_name(name: str) -> str:
    """Return upstream's display name: a file path gives its stem, a bare word is kept."""
    if "." not in name:
        return name
    stem = name.split(".")[0]
    return stem.split("/")[-1] if "/" in stem else "density"


def setup_dimple_uglymol(
    final_mtz: str, experiment: str, density_display_name_or_file: str, summary_root: Optional[str] = None
) -> Dict[str, str]:
    """Copy dimple's final.mtz/final.pdb beside a report.html that shows them with UglyMol.

    Upstream writes to ``/sdf/data/lcls/ds/<hutch>/<experiment>/stats/summary/<name>`` and downloads
    UglyMol there. Here the folder is ``<summary_root>/<name>`` (the DimpleSolve Task passes
    ``<work_dir>/../stats/summary``, the same folder for S3DF's default work_dir; without it: next
    to the MTZ), and the page loads UglyMol from its CDN, so the kernel needs no network.
    """
    name = density_display_name(density_display_name_or_file)
    root = summary_root if summary_root else os.path.join(os.path.dirname(final_mtz), "summary")
    out_dir = os.path.join(os.path.normpath(root), name)
    os.makedirs(out_dir, exist_ok=True)
    final_pdb = f"{os.path.splitext(final_mtz)[0]}.pdb"
    for source, target in ((final_mtz, "final.mtz"), (final_pdb, "final.pdb")):
        shutil.copyfile(source, os.path.join(out_dir, target))
    with open(os.path.join(out_dir, "report.html"), "w") as page:
        page.write(_REPORT.format(name=f"{experiment} {name}", uglymol=UGLYMOL_JS, mtz=MTZ_JS))
    return {"Electron density": os.path.join(out_dir, "report.html")}
