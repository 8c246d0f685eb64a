"""Test-only Task returning figures the ways upstream Tasks and ours do, and the ways that fail."""

from __future__ import annotations

from typing import Any, Dict, Literal

from lute_kernel.parameters import TaskParameters, param
from lute_kernel.task import ElogSummaryPlots, Task

LINE: Dict[str, Any] = {"data": [{"type": "scatter", "y": [1, 2, float("nan"), 4]}], "layout": {}}


class FigureForms(Task):
    """Returns figures: upstream-style in the summary and payload, with add_figures, or wrongly."""

    image = "smoke"

    class Parameters(TaskParameters):
        form: Literal["upstream", "too_many", "not_a_figure"] = param("upstream", "How to return figures.")

    def run(self) -> None:
        params = self.params
        assert isinstance(params, FigureForms.Parameters)
        if params.form == "too_many":
            self.add_figures("many", {f"f{i}": LINE for i in range(65)})
        elif params.form == "not_a_figure":
            self.add_figures("bad", b"<html></html>")
        self.add_figures("ours", LINE)
        self.result.summary = ElogSummaryPlots("upstream/summary", [LINE, LINE])
        self.result.payload = [ElogSummaryPlots("upstream/payload", {"only": LINE}), "the payload"]
