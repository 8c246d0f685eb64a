"""A step's task run is tagged (Task, backend) only when the site asks: tagged, it first asks for concurrency slots."""

from __future__ import annotations

import queue
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest

from flows.step_loop import _submit
from lute_kernel.site_settings import FlowSettings


class _StepTask:
    def __init__(self) -> None:
        self.options: List[Dict[str, Any]] = []

    def with_options(self, **options: Any) -> _StepTask:
        self.options.append(options)
        return self

    def submit(self, *_args: Any) -> Any:
        return SimpleNamespace(add_done_callback=lambda _callback: None)


@pytest.mark.parametrize(("tag_steps", "tags"), [(False, []), (True, ["Test", "local"])])
def test_steps_are_tagged_only_when_the_site_says_so(tag_steps: bool, tags: List[str]) -> None:
    prepared = SimpleNamespace(
        site=SimpleNamespace(flows=FlowSettings(tag_steps=tag_steps)),
        backend="local",
        retries=lambda own: own or 0,
        retry_delay=0.0,
    )
    runtime = SimpleNamespace(request=lambda _id: SimpleNamespace(task="Test"), can_retry=lambda _id: True)
    step = SimpleNamespace(id=3, label="Tester", retries=None)
    task = _StepTask()
    _submit(task, "key", prepared, runtime, step, queue.Queue())  # type: ignore[arg-type]
    assert task.options[0]["tags"] == tags
    assert task.options[0]["task_run_name"] == "Tester"


def test_untagged_is_the_default() -> None:
    assert FlowSettings().tag_steps is False
