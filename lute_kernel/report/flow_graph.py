"""The report's flow DAGs: each recorded flow run's steps as a layered graph, as a plotly figure spec.

Owns the drawing's data, a pure function of a :class:`lute_kernel.flow_record.FlowRecord`: a step's
column is its depth (the longest chain of upstream steps before it), steps of one column are spread
over rows, an arrow-less line joins each step to the steps it waited for (parents are always to the
left), and one marker trace per state (the timeline's colours; SKIPPED and PENDING grey) carries the
labels and hover text (Task, state, DB row, seconds, why it did not run). Reads no files.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from lute_kernel.flow_record import FlowRecord, FlowStep
from lute_kernel.report.timeline import colour_of

SKIPPED_COLOUR = "#b0b0b0"

__all__ = ["flow_figure", "step_anchor"]


def _depths(steps: List[FlowStep]) -> Dict[int, int]:
    """Longest path from a root, iteratively (a record's upstream ids may be in any order or even cyclic)."""
    by_id = {step.id: step for step in steps}
    depth = {step.id: 0 for step in steps}
    for _ in range(len(steps)):  # Bellman-Ford style: at most len(steps) rounds; a cycle just stops growing
        changed = False
        for step in steps:
            best = max((depth[u] + 1 for u in step.upstream if u in by_id and u != step.id), default=0)
            if best > depth[step.id] and best < len(steps):
                depth[step.id], changed = best, True
        if not changed:
            break
    return depth


def _colour(state: str) -> str:
    return SKIPPED_COLOUR if state in ("SKIPPED", "PENDING", "UNKNOWN") else colour_of(state)


def step_anchor(step: FlowStep) -> Optional[str]:
    """The HTML id of the run a step recorded (the report's run section), or None if it recorded none."""
    return f"run-{step.task}-{step.row}" if step.row is not None and step.task else None


def flow_figure(record: FlowRecord) -> Optional[Dict[str, Any]]:
    """Return the DAG of ``record`` (``{"data", "layout"}``), or None when it has no steps."""
    steps = record.steps
    if not steps:
        return None
    depth = _depths(steps)
    columns: Dict[int, List[FlowStep]] = {}
    for step in sorted(steps, key=lambda s: s.id):
        columns.setdefault(depth[step.id], []).append(step)
    tallest = max(len(column) for column in columns.values())
    where: Dict[int, tuple[float, float]] = {}
    for column, members in columns.items():
        offset = (tallest - len(members)) / 2.0  # centre short columns
        for row, step in enumerate(members):
            where[step.id] = (float(column), -(row + offset))
    edge_x: List[Optional[float]] = []
    edge_y: List[Optional[float]] = []
    for step in steps:
        for parent in step.upstream:
            if parent in where and parent != step.id:
                (x0, y0), (x1, y1) = where[parent], where[step.id]
                edge_x += [x0, x1, None]
                edge_y += [y0, y1, None]
    data: List[Dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": edge_x,
            "y": edge_y,
            "line": {"color": "#9a9a9a", "width": 1.5},
            "hoverinfo": "skip",
            "showlegend": False,
        }
    ]
    traces: Dict[str, Dict[str, Any]] = {}
    for step in sorted(steps, key=lambda s: s.id):
        trace = traces.setdefault(
            step.state,
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": step.state,
                "x": [],
                "y": [],
                "text": [],
                "textposition": "top center",
                "customdata": [],
                "hovertemplate": "%{customdata}<extra></extra>",
                "marker": {"size": 18, "color": _colour(step.state), "line": {"width": 1, "color": "#333"}},
            },
        )
        x, y = where[step.id]
        hover = [f"{step.label}: {step.task or 'unknown Task'}", step.state]
        if step.row is not None:
            hover.append(f"row {step.row}")
        if step.seconds is not None:
            hover.append(f"{step.seconds:.2f} s")
        if step.reason:
            hover.append(step.reason[:200])
        trace["x"].append(x)
        trace["y"].append(y)
        trace["text"].append(step.label)
        trace["customdata"].append(" · ".join(hover))
    data += [traces[state] for state in sorted(traces)]
    layout: Dict[str, Any] = {
        "height": 140 + 70 * tallest,
        "margin": {"l": 30, "r": 30, "t": 30, "b": 20},
        "xaxis": {"visible": False, "range": [-0.5, max(columns) + 0.5]},
        "yaxis": {"visible": False, "range": [-(tallest - 1) - 0.6, 0.6]},
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "showlegend": True,
    }
    return {"data": data, "layout": layout}
