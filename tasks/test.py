"""Upstream LUTE's first-party test Tasks, with their upstream names and parameters.

``Test`` (a loop that reports progress, optionally raises), ``TestSocket`` (sends numpy arrays to
the host and returns their statistics as figures), ``TestWriteOutput`` (writes a file under
work_dir; its path is the result) and
``TestReadOutput`` (reads it; ``in_file`` defaults to what TestWriteOutput last recorded).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from pydantic import ValidationInfo, field_validator

from lute_kernel.parameters import ParameterGroup, TaskParameters, param, recorded_value
from lute_kernel.task import Task


class Test(Task):
    """Simplest test Task: ten progress steps, a summary, optionally an error."""

    image = "smoke"
    aliases = ("Tester",)

    class Parameters(TaskParameters):
        """Parameters of ``Test``."""

        class CompoundVar(ParameterGroup):
            """A nested parameter (checks flattening and nested substitution)."""

            int_var: int = 1
            dict_var: Dict[str, str] = {"a": "b"}

        float_var: float = param(0.01, "A floating point number.")
        str_var: str = param("test", "A string.")
        compound_var: CompoundVar = param(description="A compound parameter: int_var and dict_var.")
        throw_error: bool = param(False, "If true, raise an exception to test error handling.")
        sleep_secs: float = param(0.1, "Seconds to sleep per step (upstream: 1.0; 0 for benchmarks).", ge=0)

    def run(self) -> None:
        """Report ten steps, then raise if asked to."""
        params = self.params
        assert isinstance(params, Test.Parameters)
        for i in range(10):
            if params.sleep_secs:
                time.sleep(params.sleep_secs)
            self.log.info("Test message %d", i)
            self.progress(i + 1, 10, f"step {i}")
        if params.throw_error:
            raise RuntimeError("Testing Error!")
        self.result.summary = "Test Finished."


STATS_SAMPLE = 100_000
"""TestSocket's figure shows the statistics of at most this many values of each array."""


class TestSocket(Task):
    """Sends numpy arrays to the host over the socket, then returns one as the payload."""

    image = "smoke"
    aliases = ("SocketTester",)

    class Parameters(TaskParameters):
        """Parameters of ``TestSocket``."""

        array_size: int = param(10000, "Number of float64 values in each array.", ge=0)
        num_arrays: int = param(10, "Number of arrays to send.", ge=0)

    def run(self) -> None:
        """Send ``num_arrays`` random arrays as progress data."""
        import numpy as np

        params = self.params
        assert isinstance(params, TestSocket.Parameters)
        rng = np.random.default_rng()
        stats = []
        for i in range(params.num_arrays):
            array = rng.random(params.array_size)
            self.progress(i + 1, params.num_arrays, f"Sending array {i}", data=array)
            if array.size:  # a sample: the benchmark sends 8 MB arrays, and this must not slow it down
                sample = array[:STATS_SAMPLE]
                stats.append((sample.mean(), sample.std(), sample.min(), sample.max()))
        self.result.summary = f"Sent {params.num_arrays} arrays"
        self.result.payload = rng.random(params.array_size)
        self.add_figures("tests/socket", _array_figures(stats, self.result.payload))


def _array_figures(stats: List[Tuple[float, float, float, float]], last: Any) -> Dict[str, Any]:
    """The figures of TestSocket (plain plotly dicts): each array's statistics, the payload's histogram."""
    import numpy as np

    index = list(range(len(stats)))
    mean, std, low, high = ([float(s[k]) for s in stats] for k in range(4))
    counts, edges = np.histogram(last, bins=40, range=(0.0, 1.0))
    line = {"type": "scatter", "mode": "lines+markers", "x": index}
    return {
        "array_statistics": {
            "data": [
                {**line, "name": "mean ± std", "y": mean, "error_y": {"type": "data", "array": std}},
                {**line, "name": "min", "y": low},
                {**line, "name": "max", "y": high},
            ],
            "layout": {
                "title": {"text": f"{len(stats)} arrays sent (statistics of up to {STATS_SAMPLE:,} values each)"},
                "xaxis": {"title": {"text": "array"}},
                "yaxis": {"title": {"text": "value"}},
            },
        },
        "payload_histogram": {
            "data": [{"type": "bar", "x": (edges[:-1] + edges[1:]) / 2, "y": counts, "name": "payload"}],
            "layout": {
                "title": {"text": f"payload: {int(counts.sum())} values"},
                "xaxis": {"title": {"text": "value"}},
            },
        },
    }


class TestWriteOutput(Task):
    """Writes random values (one per line) under work_dir; the file's path is the result."""

    image = "smoke"
    aliases = ("WriteTester",)

    class Parameters(TaskParameters):
        """Parameters of ``TestWriteOutput``."""

        set_result = True

        outfile_name: str = param("test_output.txt", "Output file name, relative to work_dir.", is_result=True)
        num_vals: int = param(100, 'Number of values to "process".', ge=1)
        sleep_secs: float = param(0.0, "Seconds to sleep per value (upstream: 0.05).", ge=0)

    def run(self) -> None:
        """Write ``num_vals`` values, reporting progress every ten."""
        import os
        import random

        params = self.params
        assert isinstance(params, TestWriteOutput.Parameters)
        values = []
        for i in range(params.num_vals):
            if params.sleep_secs:
                time.sleep(params.sleep_secs)
            values.append(random.random())
            if i % 10 == 0:
                self.progress(i + 1, params.num_vals, f"Processed {i + 1} values")
        out_file = os.path.join(params.lute_config.work_dir, params.outfile_name)
        with open(out_file, "w") as handle:
            handle.write("\n".join(f"{v:.17g}" for v in values) + "\n")
        self.result.summary = {"values_written": params.num_vals}
        self.result.payload = out_file


class TestReadOutput(Task):
    """Reads TestWriteOutput's file; ``in_file`` defaults to the path TestWriteOutput last recorded."""

    image = "smoke"
    aliases = ("ReadTester",)

    class Parameters(TaskParameters):
        """Parameters of ``TestReadOutput``."""

        in_file: str = param("", "File to read (full path). Default: TestWriteOutput's latest result.")

        @field_validator("in_file")
        @classmethod
        def _default_from_db(cls, in_file: str, info: ValidationInfo) -> str:
            if in_file:
                return in_file
            recorded: Optional[str] = recorded_value(info, "TestWriteOutput", "result.payload")
            if recorded:
                return recorded
            if info.context and info.context.get("side") == "worker":
                return in_file
            raise ValueError("no in_file given and no valid TestWriteOutput result recorded in work_dir's lute.db")

    def run(self) -> None:
        """Load the values and report how many there were."""
        params = self.params
        assert isinstance(params, TestReadOutput.Parameters)
        with open(params.in_file) as handle:
            values = [float(line) for line in handle if line.strip()]
        self.log.info("Successfully loaded %d values from %s", len(values), params.in_file)
        self.result.summary = {"values_read": len(values)}
        self.result.payload = "This Task produces no output."
