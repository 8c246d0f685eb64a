"""SubmitSMD: a run's small-data HDF5 file in smalldata_tools' layout, from lute-kernel's psana2 producer.

Owns the ``SubmitSMD`` Task (upstream managed Tasks ``SmallDataProducer`` and
``SmallDataProducer2``) and the rendering of its producer configuration. Upstream runs
smalldata_tools' ``smd_producer.py`` under mpirun with a ``prod_config`` rendered from
``config/templates/smd_producer_template.py``; smalldata_tools cannot be installed here, so the same
parameters drive our producer (``tasks/_smd_producer.py``), which writes the datasets the analyzers
and geometry Tasks read. The configuration is rendered on the host by a ``before`` tasklet (jinja2,
``render_producer_config``) into ``lute_template_cfg.output_path``; the producer runs on MPI ranks in
the psana2 image. Heavy imports stay inside ``run()``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, Optional

from lute_kernel.task import Task
from lute_kernel.tasklets import Tasklet

from ._smd_params import TEMPLATE_NAME, SubmitSMDParameters

MARKER = "rendered by lute-kernel's SubmitSMD"
"""The first line of every rendered configuration says so: SubmitSMD overwrites only its own files."""


def python_literal(value: Any) -> str:
    """Return ``value`` (JSON-like data) as a Python literal; anything else is refused."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be written into the producer configuration")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(str(k))}: {python_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"{type(value).__name__} cannot be written into the producer configuration")


def render_template(name: str, values: Dict[str, Any]) -> str:
    """Render a template of the kernel's templates folder with ``values`` (undefined names are errors)."""
    from lute_kernel.templates import render_template as render

    return render(name, values, filters={"py": python_literal}, trim_blocks=True)


def render_producer_config(
    output_path: str, experiment: str, run: str, directory: str, producer_parameters: Optional[Dict[str, Any]] = None
) -> Dict[str, str]:
    """Render the producer configuration of one run to ``output_path`` (host side, before the producer starts).

    Written next to its final name and renamed, so the producer never reads half of it.
    """
    params = {k: v for k, v in (producer_parameters or {}).items() if v is not None}
    number = int(str(run).split("_")[0])
    out_file = os.path.join(directory, f"{experiment}_Run{number:04d}.h5")
    values = {"experiment": experiment, "run": number, "out_file": out_file, **json.loads(json.dumps(params))}
    text = render_template(TEMPLATE_NAME, values)
    compile(text, output_path, "exec")  # a template bug must fail here, not in every rank
    if os.path.exists(output_path) and MARKER not in Path(output_path).read_text(errors="replace")[:200]:
        # e.g. a smalldata_tools prod_config named in lute_template_cfg.output_path: never clobber one
        raise FileExistsError(f"{output_path} exists and was not written by SubmitSMD: not overwriting it")
    os.makedirs(os.path.dirname(output_path) or ".", exist_ok=True)
    partial = f"{output_path}.part{os.getpid()}"
    with open(partial, "w") as handle:
        handle.write(text)
    os.replace(partial, output_path)
    return {"producer_config": output_path}


class SubmitSMD(Task):
    """A run's small-data HDF5 (smalldata_tools layout): ROIs, pyFAI azimuthal averages, scans, I0, sums."""

    image = "psana2"
    aliases = ("SmallDataProducer", "SmallDataProducer2")
    env = ("PS_*",)  # psana2's tuning knobs (PS_EB_NODES, PS_SRV_NODES, PS_SMD_N_EVENTS, ...)
    mpi = True  # upstream: mpirun -np N; psana2 needs 3 or more ranks in parallel mode (1 runs serially)
    Parameters = SubmitSMDParameters
    before = (
        Tasklet(
            f"{__name__}:render_producer_config",
            (
                "{{ lute_template_cfg.output_path }}",
                "{{ experiment }}",
                "{{ run }}",
                "{{ directory }}",
                "{{ producer_parameters }}",
            ),
        ),
    )

    def run(self) -> None:
        """Run the producer on this rank; rank 0 writes the file and every rank returns its summary."""
        from ._smd_producer import produce

        params = self.params
        assert isinstance(params, SubmitSMDParameters)
        summary = produce(params, lambda done, message: self.progress(done, None, message))
        if summary is not None:
            summary["producer_config"] = params.lute_template_cfg.output_path
            self.log.info("%d events -> %s", summary["events"], params.out_file)
        self.result.summary = summary
        self.result.payload = params.out_file
