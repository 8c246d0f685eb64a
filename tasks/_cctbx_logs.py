"""Summaries of the cctbx chain, read on the host from what DIALS and cctbx.xfel.merge leave behind.

Owns parsing ``dials.stills_process``'s per-rank debug logs (``<output_dir>/debug/debug_<rank>.txt``:
one ``host,image,time,state,event`` line per step of each image) into the indexing rate, and
``cctbx.xfel.merge``'s main log (``<output_dir>/<prefix>_main.log``) into completeness,
multiplicity and correlations (CC1/2, and CC against the reference MTZ when one is given). Pure
parsers plus the two ``after`` tasklets that find the files; stdlib only, so the host imports it
without cctbx. Must not run programs or write files.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any, Dict, List, Mapping, Optional

_PHIL_ASSIGNMENT = r"^\s*{name}\s*=\s*(\S+)"
_INTEGRATED = re.compile(r"integrate_ok_(\d+)")


def last_session(text: str) -> List[str]:
    """Return the lines of the newest run in a debug log (a rerun appends after an empty line)."""
    sessions = text.split("\n\n")
    return [line for line in sessions[-1].splitlines() if line.strip()]


def indexing_counts(debug_logs: List[str]) -> Dict[str, Any]:
    """Count images, indexed and integrated images, and integrated reflections in debug log texts.

    An image is indexed when its refinement started (``refine_start``: indexing succeeded) and
    integrated when it ends with ``integrate_ok_<reflections>``.
    """
    events: Dict[str, List[str]] = {}
    for text in debug_logs:
        for line in last_session(text):
            fields = line.split(",")
            if len(fields) >= 5:
                events.setdefault(fields[1], []).append(fields[4].strip())
    indexed = [tag for tag, steps in events.items() if "refine_start" in steps]
    reflections = 0
    integrated = 0
    for steps in events.values():
        done = [m for m in map(_INTEGRATED.fullmatch, steps) if m]
        if done:
            integrated += 1
            reflections += int(done[-1].group(1))
    images = len(events)
    return {
        "images": images,
        "indexed": len(indexed),
        "integrated": integrated,
        "indexing_rate": round(len(indexed) / images, 4) if images else 0.0,
        "integrated_reflections": reflections,
    }


_CC = re.compile(r"C\.C\. (iso|int) is\s+(-?[\d.]+)% on (\d+) indices")
_ALL_ROW = re.compile(r"^All\s+\[\s*(\d+)/\s*(\d+)\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", re.MULTILINE)
_READ = re.compile(r"STEP 1: Read experiments and data\s*\nExperiments: \(total,min,max\): (\d+)")
_ACCEPTED = re.compile(r"Total experiments accepted: (\d+)")


def merging_statistics(main_log: str) -> Dict[str, Any]:
    """Return the figures of merit of a cctbx.xfel.merge main log.

    ``completeness`` (fraction), ``unique`` / ``possible`` reflections and ``multiplicity`` come from
    the intensity statistics of all accepted experiments; ``cc_half`` (CC int, odd/even images) and
    ``cc_ref`` (CC iso, against the reference MTZ) from the scaling results, when reported.
    """
    stats: Dict[str, Any] = {}
    read = _READ.search(main_log)
    if read:
        stats["experiments"] = int(read.group(1))
    accepted = _ACCEPTED.findall(main_log)
    if accepted:
        stats["experiments_merged"] = int(accepted[-1])
    section = main_log.split("Intensity Statistics (all accepted experiments)", 1)
    if len(section) == 2:
        row = _ALL_ROW.search(section[1])
        if row:
            stats["unique"], stats["possible"] = int(row.group(1)), int(row.group(2))
            stats["completeness"] = round(float(row.group(3)) / 100, 4)
            stats["multiplicity"] = float(row.group(5))
    for kind, value, count in _CC.findall(main_log):
        name = "cc_ref" if kind == "iso" else "cc_half"
        stats[name] = round(float(value) / 100, 4)
        stats[f"{name}_reflections"] = int(count)
    return stats


def phil_value(phil_text: str, name: str) -> Optional[str]:
    """Return the first ``name = value`` of a phil file (the last dotted component), or None."""
    found = re.search(_PHIL_ASSIGNMENT.format(name=re.escape(name)), phil_text, re.MULTILINE)
    return found.group(1) if found else None


def phil_setting(phil: Optional[Mapping[str, Any]], key: str, phil_file: str, name: str) -> Optional[str]:
    """A phil setting: from the Task's phil_parameters, else read from the user's own phil file."""
    if phil is not None and phil.get(key):
        return str(phil[key])
    if phil_file and os.path.isfile(phil_file):
        with open(phil_file) as handle:
            return phil_value(handle.read(), name)
    return None


def indexing_summary(phil_parameters: Optional[Mapping[str, Any]], phil_file: str) -> Dict[str, Any]:
    """Tasklet after IndexCCTBXXFEL: the indexing rate of the run (from its debug logs)."""
    output_dir = phil_setting(phil_parameters, "output_output_dir", phil_file, "output_dir")
    if not output_dir:
        return {"indexing_rate": "unknown: no output_dir in phil_parameters or the phil file"}
    logs = []
    for path in sorted(glob.glob(os.path.join(output_dir, "debug", "debug_*.txt"))):
        with open(path) as handle:
            logs.append(handle.read())
    if not logs:
        raise RuntimeError(f"dials.stills_process left no debug log in {output_dir}/debug: no image was processed")
    return indexing_counts(logs)


def merging_summary(phil_parameters: Optional[Mapping[str, Any]], phil_file: str) -> Dict[str, Any]:
    """Tasklet after MergeCCTBXXFEL: completeness, multiplicity and CCs (from the main log)."""
    output_dir = phil_setting(phil_parameters, "output_output_dir", phil_file, "output_dir") or "."
    prefix = phil_setting(phil_parameters, "output_prefix", phil_file, "prefix") or "iobs"
    main_log = os.path.join(output_dir, f"{prefix}_main.log")
    if not os.path.isfile(main_log):
        raise RuntimeError(f"cctbx.xfel.merge wrote no main log {main_log}")
    with open(main_log) as handle:
        stats = merging_statistics(handle.read())
    if "completeness" not in stats:
        raise RuntimeError(f"no merging statistics in {main_log}: the merge stopped early")
    return stats
