"""Summary figures of per-event quantities, as plotly figure dicts (no plotly needed in the image).

Owns the figures ``SmallDataPsana2`` returns: each quantity against the event number (thinned to at
most `MAX_POINTS` points, so a million-event run stays a small figure) and the histogram of each, side
by side. Pure numpy;
imported inside ``run()``.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

MAX_POINTS = 5_000
"""Most points one line of a figure holds; longer series show every k-th event (the title says so)."""
BINS = 60


def per_event_figures(columns: Mapping[str, Any], title: str) -> Dict[str, Dict[str, Any]]:
    """Return ``{"per_event": …, "histogram": …}`` for event-aligned 1-d arrays (NaN: no data for that event)."""
    import numpy as np

    traces, bars = [], []
    events = 0
    step = 1
    axes: Dict[str, Any] = {}
    for i, (name, values) in enumerate(columns.items(), 1):
        values = np.asarray(values, dtype=np.float64)
        events = max(events, values.size)
        step = max(1, -(-values.size // MAX_POINTS))
        index = np.arange(0, values.size, step)
        traces.append({"type": "scatter", "mode": "lines", "name": name, "x": index, "y": values[::step]})
        finite = values[np.isfinite(values)]
        counts, edges = np.histogram(finite, bins=BINS) if finite.size else (np.zeros(0), np.zeros(1))
        centres = (edges[:-1] + edges[1:]) / 2
        suffix = "" if i == 1 else str(i)  # one panel per quantity: each has its own range
        bars.append(
            {"type": "bar", "name": name, "x": centres, "y": counts, "xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}
        )
        axes[f"xaxis{suffix}"] = {"title": {"text": f"{name} (ADU)"}}
        axes[f"yaxis{suffix}"] = {"title": {"text": "events"}}
    thinned = f" (every {step}th event shown)" if step > 1 else ""
    return {
        "per_event": {
            "data": traces,
            "layout": {
                "title": {"text": f"{title}: {events} events{thinned}"},
                "xaxis": {"title": {"text": "event"}},
                "yaxis": {"title": {"text": "sum (ADU)"}},
            },
        },
        "histogram": {
            "data": bars,
            "layout": {
                "title": {"text": f"{title}: distribution"},
                "grid": {"rows": 1, "columns": max(1, len(bars)), "pattern": "independent"},
                "showlegend": False,
                **axes,
            },
        },
    }
