"""Test-only Task for flow retries: fails its first attempts on purpose, then completes."""

from __future__ import annotations

from pathlib import Path

from lute_kernel.parameters import TaskParameters, param
from lute_kernel.task import Task


class FlakyTask(Task):
    """Counts its attempts in a file; raises until ``failures`` attempts have failed."""

    image = "smoke"
    aliases = ("FlakyTester",)

    class Parameters(TaskParameters):
        counter: str = param(..., "File (in work_dir) that counts the attempts.")
        failures: int = param(1, "How many attempts fail before one completes.", ge=0)

    def run(self) -> None:
        params = self.params
        assert isinstance(params, FlakyTask.Parameters)
        path = Path(params.lute_config.work_dir) / params.counter
        attempt = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(attempt))
        self.log.info("attempt %d", attempt)
        if attempt <= params.failures:
            raise RuntimeError(f"attempt {attempt} fails on purpose")
        self.result.summary = {"attempts": attempt}
