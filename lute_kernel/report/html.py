"""Rendering the report and the eLog summary pages: self-contained HTML with plotly.js inside.

Owns the page templates (``page.html.j2``, ``summary.html.j2``, package data next to this module),
embedding data safely (figures as one JSON document that no ``</script>`` can end early, every other
value escaped by jinja2's autoescape) and plotly.js, read from the installed ``plotly`` package, never
fetched: a page needs no network, and its Content-Security-Policy forbids loading anything. Must not
read the database.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from importlib import resources
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jinja2
from markupsafe import Markup

from lute_kernel.errors import InputError
from lute_kernel.figure_store import StoredFigure
from lute_kernel.flow_record import FlowRecord
from lute_kernel.report.flow_graph import flow_figure, step_anchor
from lute_kernel.report.runs import RunEntry
from lute_kernel.report.timeline import colour_of, timeline_figure

__all__ = ["plotly_js", "render_report", "render_summary"]

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """Return plotly.js as the installed ``plotly`` package ships it (``package_data/plotly.min.js``).

    Raises:
        InputError: plotly is not installed (``pip install plotly``; it is a dependency of lute-kernel).
    """
    try:
        text = (resources.files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise InputError(f"the report embeds plotly.js from the plotly package, which is missing: {exc}") from None
    return text.replace("</script", "<\\/script")


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lute_kernel.report", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["colour"] = colour_of
    env.filters["seconds"] = lambda s: "" if s is None else (f"{s:.2f} s" if s < 120 else f"{s / 60:.1f} min")
    env.filters["moment"] = lambda m: (m or "").replace("T", " ")[:19]
    return env


def _json_script(value: Any) -> Markup:
    # Inside <script type="application/json">: only "</script" could end it early; "<" as \u003c
    # (still the same JSON) rules that out, and U+2028/9 are fine in JSON.parse.
    return Markup(json.dumps(value, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c"))


def _figures(groups: Sequence[Tuple[str, Sequence[StoredFigure]]]) -> Tuple[List[Dict[str, Any]], Dict[str, int]]:
    """Return the figure list of the page and each figure's place in it, by ``<group>/<display_name>/<name>``."""
    specs: List[Dict[str, Any]] = []
    index: Dict[str, int] = {}
    for group, figures in groups:
        for figure in figures:
            index[f"{group}/{figure.display_name}/{figure.name}"] = len(specs)
            specs.append({"name": f"{figure.display_name}/{figure.name}", "spec": figure.spec})
    return specs, index


def _status_counts(runs: Sequence[RunEntry]) -> List[Tuple[str, int]]:
    counts: Dict[str, int] = {}
    for run in runs:
        status = run.status.split(" ")[0]
        counts[status] = counts.get(status, 0) + 1
    return sorted(counts.items())


def render_report(
    work_dir: str,
    db_file: str,
    runs: Sequence[RunEntry],
    *,
    now: Optional[datetime] = None,
    flows: Sequence[FlowRecord] = (),
) -> str:
    """Return the report of a work_dir: every run, a timeline, its flows' DAGs, summaries and figures, in one page."""
    figures, index = _figures([(run.anchor, run.figures) for run in runs])
    timeline = timeline_figure(runs)
    anchors = {run.anchor for run in runs}
    flow_views = [
        {
            "record": record,
            "steps": [(step, step_anchor(step) if step_anchor(step) in anchors else None) for step in record.steps],
        }
        for record in flows
    ]
    return (
        _environment()
        .get_template("page.html.j2")
        .render(
            work_dir=work_dir,
            db_file=db_file,
            runs=runs,
            counts=_status_counts(runs),
            tasks=sorted({run.task for run in runs}),
            generated=(now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
            figure_index=index,
            flows=flow_views,
            figure_data=_json_script(
                {
                    "figures": figures,
                    "timeline": timeline,
                    "flows": [flow_figure(record) for record in flows],
                    "config": PLOTLY_CONFIG,
                }
            ),
            plotly_js=Markup(plotly_js()),
        )
    )


def render_summary(display_name: str, figures: Sequence[StoredFigure], *, title: str = "") -> str:
    """Return one eLog summary page: the figures of one display name, self-contained."""
    data, index = _figures([(display_name, figures)])
    return (
        _environment()
        .get_template("summary.html.j2")
        .render(
            display_name=display_name,
            title=title or display_name,
            figures=figures,
            figure_index=index,
            figure_data=_json_script({"figures": data, "timeline": None, "config": PLOTLY_CONFIG}),
            plotly_js=Markup(plotly_js()),
        )
    )
