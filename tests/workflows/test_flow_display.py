"""The flow's live table: a step's progress is a bar on a terminal and a plain line elsewhere, never both."""

from __future__ import annotations

import io

from rich.console import Console

from flows.backends.base import NodeResult
from flows.runtime import FlowEvent, NodeState
from lute_kernel.cli.flow_display import FlowDisplay, progress_bar


def test_progress_bars() -> None:
    assert progress_bar("3/12 step 2", width=12) == "▰▰▰▱▱▱▱▱▱▱▱▱ 3/12 step 2"
    assert progress_bar("12/12", width=4) == "▰▰▰▰ 12/12"
    assert progress_bar("7 events") == "7 events"  # no total: the count as it came


def _display(terminal: bool) -> tuple:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=160, color_system=None)
    return FlowDisplay([("Tester", "Test")], console=console), out


def test_off_a_terminal_progress_is_one_plain_line_per_message() -> None:
    display, out = _display(terminal=False)
    with display:
        display(FlowEvent("state", "Tester", "Test", state=NodeState.RUNNING, attempt=1))
        display(FlowEvent("progress", "Tester", "Test", text="3/10 step 2", attempt=1))
        display(FlowEvent("state", "Tester", "Test", state=NodeState.COMPLETED, attempt=1))
    lines = out.getvalue().splitlines()
    assert "[Tester] progress 3/10 step 2" in lines
    assert not any("▰" in line for line in lines)  # the table printed at the end shows no bar once done


def test_on_a_terminal_progress_is_a_bar_in_the_table_not_a_line() -> None:
    display, out = _display(terminal=True)
    with display:
        display(FlowEvent("state", "Tester", "Test", state=NodeState.RUNNING, attempt=1))
        display(FlowEvent("progress", "Tester", "Test", text="5/10 half", attempt=1))
        rendered = io.StringIO()
        Console(file=rendered, width=160, color_system=None).print(display.table())
    assert "▰▰▰▰▰▰▱▱▱▱▱▱ 5/10 half" in rendered.getvalue()
    assert "[Tester] progress" not in out.getvalue()


def test_the_profile_is_each_phases_median_over_the_steps_that_reported_one() -> None:
    display, _ = _display(terminal=False)
    with display:
        for ms in (1.0, 5.0, 3.0):
            result = NodeResult(NodeState.COMPLETED, "Test", extra={"phases": {"Task": ms}})
            display(FlowEvent("state", "Tester", "Test", state=NodeState.COMPLETED, attempt=1, result=result))
        display(
            FlowEvent(
                "state",
                "Tester",
                "Test",
                state=NodeState.FAILED,
                attempt=2,
                result=NodeResult(NodeState.FAILED, "Test"),
            )
        )
    report = display.profile_report().splitlines()
    assert report[0] == "lute-kernel profile: 3 steps, the median of each phase"
    assert report[1].split() == ["Task", "3.0", "ms", "(3", "steps)"]
