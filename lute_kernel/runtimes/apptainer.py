"""The Apptainer runtime: the Task runs in its image with ``apptainer exec``. Pure argv building.

Owns the container argv: ``--no-eval`` always (Apptainer must never shell-evaluate the values of
``--env`` or ``APPTAINERENV_*``: ``X=$(cmd)`` would run ``cmd`` inside), isolation flags
(``--containall --cleanenv --no-home``; MPI ranks drop the
private PID/IPC namespaces, see ``ApptainerSettings.mpi_exec_flags``), explicit binds
(the run directory at a short fixed path for the socket; the kernel and Task folders read-only at
their host paths, so images never need a rebuild when the kernel changes; work_dir and the site's
data paths read-write), the Task's environment as ``--env`` pairs from an allowlist, ``--nv`` for
GPU Tasks; for MPI ranks, the run's own shared-memory folder bound at ``/dev/shm`` in every rank (each
container's ``/dev/shm`` is private otherwise, and Apptainer binds nothing from under the host's
``/dev`` there), so MPICH's shared memory works between the ranks of one Task, and the kernel's
``rank.env`` file, which Apptainer itself evaluates per rank to copy that rank's launcher variables
in (no host interpreter per rank); and the image's own Python. Spawns nothing; the image (and the
MPI it carries) is looked up in the build manifest (``lute_kernel.images``), never hashed here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Tuple

from lute_kernel.errors import InputError
from lute_kernel.runtimes.base import Runtime, RuntimeCapabilities, allowed_env, kernel_package_dir

if TYPE_CHECKING:
    from lute_kernel.images import BuiltImage
    from lute_kernel.plan import ProcessSpec
    from lute_kernel.sites import SiteProfile

SPAWN_ENV_ALLOWLIST: Tuple[str, ...] = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_*", "TMPDIR", "APPTAINER_*",
    "SLURM_*", "PMI_*", "PMIX_*", "OMPI_*", "HYDRA_*", "MPIR_*", "UCX_*",
)  # fmt: skip
"""What the processes outside the container need from the host: the apptainer client, and a
launcher in front of it (srun must see its allocation). ``--cleanenv`` keeps all of it out of the
container; per-rank launcher values cross only through ``RANK_ENV_FILE``."""

KERNEL_PACKAGE = kernel_package_dir()
"""The ``lute_kernel`` package folder (where this kernel was imported from), bound read-only into every container."""

RANK_ENV_FILE = KERNEL_PACKAGE / "runtimes" / "rank.env"
"""``apptainer exec --env-file``: copies each rank's PMI_*/SLURM_*/… variables (a constant file of the kernel's)."""

SHM_DIR = "shm"
"""The folder of the run directory bound at ``/dev/shm`` in every rank of an MPI Task."""

NO_EVAL = "--no-eval"
"""Always right after ``exec``, whatever the site's flags: values reach the Task literally."""


def parse_bind(spec: str) -> Tuple[str, str, str]:
    """Split ``src[:dst[:opts]]`` into its parts (dst defaults to src)."""
    parts = spec.split(":")
    if not parts[0] or len(parts) > 3:
        raise InputError(f"bad bind {spec!r}: use 'src', 'src:dst' or 'src:dst:ro'")
    src = parts[0]
    dst = parts[1] if len(parts) > 1 and parts[1] else src
    opts = parts[2] if len(parts) > 2 else ""
    return src, dst, opts


class ApptainerRuntime(Runtime):
    """Runs the process inside the Task's image with ``apptainer exec``."""

    name = "apptainer"
    capabilities = RuntimeCapabilities(supports_mpi=True, isolates_env=True, isolates_filesystem=True)
    task_env_prefix = "APPTAINERENV_"

    def __init__(self, site: SiteProfile) -> None:
        super().__init__(site.env_allowlist)
        self.site = site
        self.settings = site.apptainer
        self._images: Dict[str, BuiltImage] = {}

    def image(self, spec: ProcessSpec) -> BuiltImage:
        """Return the built image of the spec (InputError naming `just build-image` when missing)."""
        if not spec.image:
            raise InputError("this Task names no image; it cannot run in the apptainer runtime")
        if spec.image not in self._images:
            from lute_kernel.images import find_image

            self._images[spec.image] = find_image(spec.image, self.site)
        return self._images[spec.image]

    def ipc_endpoint(self, run_dir: str) -> str:
        """The run directory is bound at a short fixed path inside."""
        return f"ipc://{self.settings.ipc_mount}/s"

    def binds(self, spec: ProcessSpec) -> List[str]:
        """Return the ``--bind`` values, in order."""
        binds: List[str] = []
        if spec.run_dir:
            binds.append(f"{spec.run_dir}:{self.settings.ipc_mount}")
        for path in (str(kernel_package_dir()), *spec.read_only_paths):
            binds.append(f"{path}:{path}:ro")
        binds.extend(spec.writable_paths)
        for site_bind in self.settings.binds:
            src, dst, opts = parse_bind(site_bind)
            if os.path.exists(src):  # a site lists its data areas; a node may lack some
                binds.append(":".join(p for p in (src, dst, opts) if p))
        if spec.resources.ranks > 1 and self.settings.mpi_shm and spec.run_dir:
            binds.append(f"{spec.run_dir}/{SHM_DIR}:/dev/shm")
        return binds

    def private_dirs(self, spec: ProcessSpec) -> List[str]:
        """Return the folders of the run directory the executor makes before the launch (the ranks' /dev/shm)."""
        return [SHM_DIR] if spec.resources.ranks > 1 and self.settings.mpi_shm and spec.run_dir else []

    def task_environment(self, spec: ProcessSpec, host_env: Mapping[str, str]) -> Dict[str, str]:
        """Return the variables the Task gets (passed with ``--env``): the allowlist, GPU ones, Python's."""
        env = super().task_environment(spec, host_env)
        if spec.resources.gpus:
            env.update(allowed_env(host_env, self.settings.gpu_env))
        if spec.resources.ranks > 1:
            if not (self.settings.mpi_shm and spec.run_dir):
                env["MPIR_CVAR_NOLOCAL"] = "1"  # private /dev/shm per container: MPICH must not use it
            env.update(self.settings.mpi_env)
        env["PYTHONNOUSERSITE"] = "1"
        env["PYTHONPATH"] = str(kernel_package_dir().parent)
        return env

    def wrap(self, spec: ProcessSpec) -> List[str]:
        """Return ``apptainer exec <flags> <binds> <env> <sif> <argv>``."""
        from lute_kernel.plan import PYTHON

        flags = self.settings.mpi_exec_flags if spec.resources.ranks > 1 else self.settings.exec_flags
        argv: List[str] = [self.settings.binary, "exec", NO_EVAL, *flags, *self.settings.extra_args]
        if spec.resources.ranks > 1:  # each rank's own PMI/Slurm variables must cross --cleanenv
            argv.extend(["--env-file", str(RANK_ENV_FILE)])
        if spec.resources.gpus:
            argv.append("--nv")
        argv.extend(["--pwd", spec.cwd])
        for bind in self.binds(spec):
            argv.extend(["--bind", bind])
        for key, value in sorted(spec.env.items()):
            argv.extend(["--env", f"{key}={value}"])
        argv.append(str(self.image(spec).runnable))
        argv.extend(self.settings.python if arg == PYTHON else arg for arg in spec.argv)
        return argv

    def environment(self, spec: ProcessSpec, host_env: Mapping[str, str]) -> Dict[str, str]:
        """Return the environment of the ``apptainer`` process itself (the Task's goes in argv)."""
        return allowed_env(host_env, SPAWN_ENV_ALLOWLIST)

    def image_name(self, spec: ProcessSpec) -> Optional[str]:
        """Return the image's name."""
        return spec.image

    def image_digest(self, spec: ProcessSpec) -> Optional[str]:
        """Return the SIF's sha256 as recorded when it was built."""
        return self.image(spec).sha256

    def mpi_interfaces(self, spec: ProcessSpec) -> Optional[Tuple[str, ...]]:
        """Return the PMI interfaces of the image's MPI, as its recipe declared them (none: no MPI)."""
        mpi = self.image(spec).mpi
        return tuple(mpi.pmi) if mpi is not None else ()
