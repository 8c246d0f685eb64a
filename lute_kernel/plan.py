"""The plan of one launch: pure data, built by pure functions. Printing it is the dry run.

Owns ``ProcessSpec`` (what to run, before any runtime or launcher wraps it), ``LaunchPlan`` (the
exact argv/env/cwd the executor will spawn) and ``build_plan``, which composes
``launcher.wrap(runtime.wrap(spec))``. Spawns nothing, reads no files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Mapping, Optional, Tuple

from lute_kernel.launchers.base import Launcher
from lute_kernel.runtimes.base import Runtime
from lute_kernel.task import Resources

PYTHON = "{python}"
"""Placeholder for argv[0]: each runtime substitutes its own interpreter."""


@dataclass(frozen=True)
class ProcessSpec:
    """What the Task's process is, independent of where and how it is started."""

    argv: Tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    passthrough_env: Tuple[str, ...] = ()
    cwd: str = "."
    resources: Resources = field(default_factory=Resources)
    image: Optional[str] = None
    run_dir: str = ""
    read_only_paths: Tuple[str, ...] = ()
    writable_paths: Tuple[str, ...] = ()


@dataclass(frozen=True)
class LaunchPlan:
    """Exactly what the executor spawns."""

    argv: Tuple[str, ...]
    env: Dict[str, str]
    cwd: str
    runtime: str
    launcher: str
    image: Optional[str] = None
    image_sha256: Optional[str] = None
    run_dir: str = ""
    ipc_endpoint: str = ""
    task_env_prefix: str = ""
    """How the executor passes a variable to the Task without argv (``APPTAINERENV_`` in containers)."""
    ranks: int = 1
    """How many worker processes will connect (MPI ranks)."""
    task_env: Dict[str, str] = field(default_factory=dict)
    """The environment the Task itself receives (inside the container); what the DB records."""
    private_dirs: Tuple[str, ...] = ()
    """Folders of the run directory the executor makes (0700) before the launch, e.g. the ranks' /dev/shm."""


def build_plan(spec: ProcessSpec, runtime: Runtime, launcher: Launcher, host_env: Mapping[str, str]) -> LaunchPlan:
    """Compose the launch: the runtime wraps the process, the launcher wraps the runtime."""
    launcher = launcher.for_process(spec, runtime)  # checks; the MPI launchers match the image's MPI
    spec = replace(spec, env=runtime.task_environment(spec, host_env))
    inner = runtime.wrap(spec)
    argv = launcher.wrap(inner, spec.resources)
    return LaunchPlan(
        argv=tuple(argv),
        env=runtime.environment(spec, host_env),
        cwd=spec.cwd,
        runtime=runtime.name,
        launcher=launcher.name,
        image=runtime.image_name(spec),
        image_sha256=runtime.image_digest(spec),
        run_dir=spec.run_dir,
        ipc_endpoint=runtime.ipc_endpoint(spec.run_dir) if spec.run_dir else "",
        task_env_prefix=runtime.task_env_prefix,
        ranks=spec.resources.ranks,
        task_env=dict(spec.env),
        private_dirs=tuple(runtime.private_dirs(spec)),
    )
