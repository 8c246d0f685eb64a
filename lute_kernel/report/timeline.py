"""The report's timeline: the runs of a work_dir as a Gantt chart, as a plotly figure spec.

Owns the chart's data, a pure function of the runs: one horizontal bar per run from its start to its
end, one row per Task, one trace (colour) per status, hover text naming the row. A run still going
(or LOST) ends "now", as far as the chart knows: the latest time it has seen. Must not read the
database or render HTML.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence

from lute_kernel.report.runs import RunEntry

STATUS_COLOURS: Dict[str, str] = {
    "COMPLETED": "#2e9e44",
    "FAILED": "#d1342f",
    "TIMEDOUT": "#e8850c",
    "CANCELLED": "#8a5cc2",
    "RUNNING": "#2f7fd1",
    "LOST": "#8c564b",
}
OTHER_COLOUR = "#7f7f7f"
MIN_BAR_FRACTION = 0.004
"""A bar is at least this share of the chart's span wide, so a 0.2 s run is visible next to an hour."""

__all__ = ["STATUS_COLOURS", "colour_of", "timeline_figure"]


def colour_of(status: str) -> str:
    """Return the colour of a status (``RUNNING (host X)`` is RUNNING's)."""
    return STATUS_COLOURS.get(status.split(" ")[0], OTHER_COLOUR)


def _moment(text: Optional[str]) -> Optional[datetime]:
    return datetime.fromisoformat(text) if text else None


def timeline_figure(runs: Sequence[RunEntry]) -> Optional[Dict[str, Any]]:
    """Return the Gantt chart of ``runs`` (``{"data", "layout"}``), or None when no run has a start time."""
    timed = [(run, _moment(run.start), _moment(run.end)) for run in runs if run.start]
    if not timed:
        return None
    latest = max(moment for _, start, end in timed for moment in (start, end) if moment is not None)
    earliest = min(start for _, start, _ in timed if start is not None)
    span_ms = max((latest - earliest).total_seconds() * 1000.0, 1000.0)
    traces: Dict[str, Dict[str, Any]] = {}
    for run, start, end in sorted(timed, key=lambda item: (item[0].task, item[0].row_id)):
        assert start is not None
        status = run.status.split(" ")[0]
        trace = traces.setdefault(
            status,
            {
                "type": "bar",
                "orientation": "h",
                "name": status,
                "marker": {"color": colour_of(status)},
                "y": [],
                "x": [],
                "base": [],
                "customdata": [],
                "hovertemplate": "%{customdata}<extra></extra>",
            },
        )
        finished = end or latest
        length_ms = max((finished - start).total_seconds() * 1000.0, span_ms * MIN_BAR_FRACTION)
        took = f"{run.seconds:.2f} s" if run.seconds is not None else "no end recorded"
        trace["y"].append(run.task)
        trace["x"].append(round(length_ms, 3))
        trace["base"].append(start.isoformat())
        trace["customdata"].append(f"{run.task} row {run.row_id}: {run.status}, {took}")
    tasks = sorted({run.task for run, _, _ in timed})
    layout: Dict[str, Any] = {
        "barmode": "overlay",
        "height": 120 + 28 * len(tasks),
        "margin": {"l": 10, "r": 10, "t": 10, "b": 70},
        "xaxis": {"type": "date", "title": {"text": "time (UTC)"}},
        "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": tasks[::-1], "automargin": True},
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "showlegend": True,
    }
    data: List[Dict[str, Any]] = [traces[status] for status in sorted(traces)]
    return {"data": data, "layout": layout}
