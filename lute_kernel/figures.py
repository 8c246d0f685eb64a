"""Figures a Task hands back (upstream's ``ElogSummaryPlots``), as plotly figure data.

Owns what a figure is on its way from a Task to the host: a plotly figure spec, plain data
``{"data": [trace, ...], "layout": {...}}``. A Task gives a plotly ``Figure`` (anything with
``to_plotly_json()`` or ``to_dict()``) or such a dict; it is turned into the spec here, in the Task's
process, so it crosses the socket as JSON (arrays as raw buffers, as every message's) and never as a
pickle. Plotly was picked over matplotlib and holoviews/panel because its figure *is* JSON data:
nothing to render in the image, interactive in the report, embeddable offline with plotly.js.

Also owns the names: ``display_name`` (upstream: a path under the eLog's summaries, ``"scans/motor"``)
and each figure's ``name`` are checked here, on both sides (the host re-checks what a worker sent:
they become file names). Runs inside every image: stdlib only; plotly is never imported (a Figure
brings its own). Must not write files: the host stores figures (``lute_kernel.figure_store``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

__all__ = [
    "MAX_FIGURES",
    "ElogSummaryPlots",
    "FigureError",
    "check_display_name",
    "check_figure_name",
    "figure_messages",
    "figure_spec",
    "split_plots",
]

MAX_FIGURES = 64
"""Most figures one run may return (each is embedded in the report)."""

_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=,@ -]{0,99}\Z")
"""One path component of a display name or a figure name: no separators, no leading dot or space."""
MAX_DISPLAY_DEPTH = 8


class FigureError(ValueError):
    """A figure, its name or its display name is not usable."""


def _check_part(part: str, what: str, whole: str) -> None:
    if not _PART.match(part) or part.endswith((".", " ")):
        raise FigureError(
            f"{what} {whole!r}: each part must start with a letter or digit and hold only letters, digits,"
            " spaces and _ . + = , @ - (at most 100 characters)"
        )


def check_display_name(display_name: Any) -> str:
    """Return ``display_name`` if it is a relative path of plain parts (``"scans/my_motor_scan"``).

    Raises:
        FigureError: Not a string, empty, absolute, with ``..``, or with characters a file name should not hold.
    """
    if not isinstance(display_name, str) or not display_name:
        raise FigureError(f"display_name must be a non-empty string, not {display_name!r}")
    parts = display_name.split("/")
    if len(parts) > MAX_DISPLAY_DEPTH:
        raise FigureError(f"display_name {display_name!r} has more than {MAX_DISPLAY_DEPTH} parts")
    for part in parts:
        _check_part(part, "display_name", display_name)
    return display_name


def check_figure_name(name: Any) -> str:
    """Return ``name`` if it can name a figure's file (one plain part, no ``/``).

    Raises:
        FigureError: It cannot.
    """
    if not isinstance(name, str):
        raise FigureError(f"a figure name must be a string, not {name!r}")
    _check_part(name, "figure name", name)
    return name


def figure_spec(figure: Any) -> Dict[str, Any]:
    """Return a figure as plotly's plain data: ``{"data": [...], "layout": {...}}`` (``"frames"`` kept).

    Args:
        figure: A plotly ``Figure`` (or anything with ``to_plotly_json()``/``to_dict()``), or a dict
            with ``data`` (a list of trace dicts) and optionally ``layout``.

    Raises:
        FigureError: Anything else (matplotlib figures, HTML bytes: convert them to plotly first).
    """
    if isinstance(figure, Mapping):
        spec: Any = figure
    elif callable(getattr(figure, "to_plotly_json", None)):
        spec = figure.to_plotly_json()
    elif callable(getattr(figure, "to_dict", None)):
        spec = figure.to_dict()
    else:
        raise FigureError(
            "a figure must be a plotly Figure or a dict {'data': [...], 'layout': {...}},"
            f" not {type(figure).__name__}"
        )
    if not isinstance(spec, Mapping):
        raise FigureError(f"{type(figure).__name__} gave {type(spec).__name__}, not a figure dict")
    data = spec.get("data", [])
    layout = spec.get("layout", {})
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise FigureError("a figure's 'data' must be a list of traces")
    if not all(isinstance(trace, Mapping) for trace in data):
        raise FigureError("each trace of a figure's 'data' must be a dict")
    if not isinstance(layout, Mapping):
        raise FigureError("a figure's 'layout' must be a dict")
    unknown = sorted(set(spec) - {"data", "layout", "frames"})
    if unknown:
        raise FigureError(f"a figure has only 'data', 'layout' and 'frames', not {', '.join(map(repr, unknown))}")
    out: Dict[str, Any] = {"data": [dict(trace) for trace in data], "layout": dict(layout)}
    if spec.get("frames"):
        out["frames"] = list(spec["frames"])
    return out


def _named(figures: Any) -> List[Tuple[str, Any]]:
    if isinstance(figures, Mapping) and not ("data" in figures or "layout" in figures):
        return [(check_figure_name(name), figure) for name, figure in figures.items()]
    if isinstance(figures, (list, tuple)):
        if len(figures) == 1:
            return [("figure", figures[0])]
        return [(f"figure_{i}", figure) for i, figure in enumerate(figures, 1)]
    return [("figure", figures)]


@dataclass
class ElogSummaryPlots:
    """A graphical summary of a run, for the report and the eLog (upstream's class of the same name).

    Attributes:
        display_name: Where the summary is shown (and stored): a relative path such as
            ``"scans/my_motor_scan"`` (upstream: a ``my_motor_scan`` page under a ``scans`` tab).
        figures: One figure, a list of them, or a dict ``{name: figure}``; a figure is a plotly
            Figure or its dict ``{"data": [...], "layout": {...}}``.

    Raises:
        FigureError: At construction, for a bad display name, figure name or figure (so the Task
            fails where it made the figure, with a traceback).
    """

    display_name: str
    figures: Any
    specs: List[Tuple[str, Dict[str, Any]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_display_name(self.display_name)
        named = _named(self.figures)
        if len({name for name, _ in named}) != len(named):
            raise FigureError(f"figure names repeat in {self.display_name!r}")
        self.specs = [(name, figure_spec(figure)) for name, figure in named]


def split_plots(value: Any) -> Tuple[Any, List[ElogSummaryPlots]]:
    """Take upstream-style plots out of a summary or payload: ``(what is left, the plots)``.

    Upstream Tasks put an ``ElogSummaryPlots`` (or a list holding some) in ``result.summary`` or
    ``result.payload``; what is left of a lone plot is ``None``.
    """
    if isinstance(value, ElogSummaryPlots):
        return None, [value]
    if isinstance(value, (list, tuple)) and any(isinstance(v, ElogSummaryPlots) for v in value):
        plots = [v for v in value if isinstance(v, ElogSummaryPlots)]
        rest = [v for v in value if not isinstance(v, ElogSummaryPlots)]
        return (rest if rest else None), plots
    return value, []


def figure_messages(plots: Sequence[ElogSummaryPlots]) -> List[Dict[str, Any]]:
    """Return the ``"figures"`` entry of a result message: ``[{"display_name", "name", "figure"}, ...]``.

    Raises:
        FigureError: More than `MAX_FIGURES` figures, or a name used twice under one display name.
    """
    messages: List[Dict[str, Any]] = []
    seen = set()
    for plot in plots:
        for name, spec in plot.specs:
            key = (plot.display_name, name)
            if key in seen:
                raise FigureError(f"figure {name!r} of {plot.display_name!r} is returned twice")
            seen.add(key)
            messages.append({"display_name": plot.display_name, "name": name, "figure": spec})
    if len(messages) > MAX_FIGURES:
        raise FigureError(f"{len(messages)} figures returned; at most {MAX_FIGURES} are kept per run")
    return messages
