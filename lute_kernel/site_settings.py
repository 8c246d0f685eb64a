"""The settings of each backend in a site profile: ``apptainer:``, ``images:``, ``mpi:``, ``slurm:``.

Owns one pydantic model per backend (cwltool's ``MpiConfig`` style): unknown keys and wrong types
are errors (strict: a YAML string is not a number, ``true`` is not a count), and each field's
description documents the option. ``lute_kernel.sites`` puts them together as ``SiteProfile``.
Data only: no file is read here.
"""

from __future__ import annotations

from typing import Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class ApptainerSettings(BaseModel):
    """How Tasks run in Apptainer at this site (``apptainer:`` in the site profile)."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)  # built on first validation: see site_memo

    binary: str = Field("apptainer", description="The apptainer (or singularity) command.")
    exec_flags: List[str] = Field(
        default_factory=lambda: ["--containall", "--cleanenv", "--no-home"],
        description="Isolation flags of every `apptainer exec`.",
    )
    mpi_exec_flags: List[str] = Field(
        default_factory=lambda: ["--contain", "--cleanenv", "--no-home"],
        description="Isolation flags for MPI ranks: no private PID/IPC namespaces, which make ranks in"
        " separate containers look alike to MPI (same host, same pid) and hang their communication.",
    )
    extra_args: List[str] = Field(default_factory=list, description="More `apptainer exec` options for this site.")
    python: str = Field("python3", description="The image's Python (runs `-m lute_kernel.worker`).")
    binds: List[str] = Field(
        default_factory=list,
        description="Data paths bound at the same place inside ('/sdf/data' or 'src:dst[:ro]'); missing ones skipped.",
    )
    ipc_mount: str = Field("/lute/ipc", description="Where the run directory (and its socket) appears inside.")
    gpu_env: List[str] = Field(
        default_factory=lambda: ["CUDA_VISIBLE_DEVICES", "NVIDIA_*"], description="Variables passed to GPU Tasks."
    )
    mpi_env: Dict[str, str] = Field(
        default_factory=dict,
        description="Variables set for MPI ranks (e.g. MPIR_CVAR_NOLOCAL: '1' to keep MPICH off shared memory).",
    )
    mpi_shm: bool = Field(
        True,
        description="Give the ranks of one Task a shared /dev/shm: a private folder of the run, bound at /dev/shm"
        " in every rank (each container's own /dev/shm is private, and Apptainer binds no host folder under /dev"
        " elsewhere), so MPICH's shared memory works between them. False: MPIR_CVAR_NOLOCAL=1 instead.",
    )


class ImageSettings(BaseModel):
    """How this site builds images (``images:`` in the site profile; used by ``lute-kernel images``)."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)  # built on first validation: see site_memo

    bootstrap: Literal["debootstrap", "docker"] = Field(
        "debootstrap",
        description="How the base image starts: 'debootstrap' from a Debian mirror, or 'docker' from a registry.",
    )
    debian_release: str = Field("bookworm", description="Debian release of the base image.")
    debian_mirror: str = Field("http://deb.debian.org/debian", description="Debian mirror (debootstrap bootstrap).")
    docker_from: str = Field("debian:bookworm-slim", description="Registry image of the base (docker bootstrap).")
    trust_host_ca: bool = Field(
        False,
        description="Copy the host's extra CA certificates into the base image (for TLS-intercepting networks).",
    )
    host_ca_files: List[str] = Field(
        default_factory=lambda: ["/usr/local/share/ca-certificates/*.crt"],
        description="Globs of the host CA certificates trusted when trust_host_ca is true.",
    )
    pip_index_url: Optional[str] = Field(None, description="pip --index-url inside image builds.")
    pip_extra_index_urls: List[str] = Field(default_factory=list, description="pip --extra-index-url values.")
    recipes_dir: Optional[str] = Field(
        None, description="The recipes folder (default: the packaged recipes; $LUTE_RECIPES_DIR overrides)."
    )
    images_dir: Optional[str] = Field(
        None,
        description="Build records and SIF links (default: images/ of the source tree the recipes are in, else a"
        " folder per recipes folder under $XDG_STATE_HOME/lute-kernel/images; $LUTE_IMAGES_DIR overrides).",
    )
    cache_dir: str = Field(
        "~/.cache/lute-kernel/images",
        description="Where built SIFs live, shared across clones ($LUTE_IMAGE_CACHE overrides).",
    )
    compression: Literal["gzip", "lz4", "zstd", "xz"] = Field("zstd", description="SIF squashfs compression.")
    run_from: Literal["sif", "sandbox"] = Field(
        "sif",
        description="Run Tasks from the SIF, or from an unpacked copy made after each build (faster to start"
        " where Apptainer mounts SIFs through FUSE).",
    )
    fakeroot: bool = Field(True, description="Build with `apptainer build --fakeroot`.")
    build_tmpdir: Optional[str] = Field(None, description="APPTAINER_TMPDIR for builds (needs the unpacked size).")
    build_args: List[str] = Field(default_factory=list, description="More `apptainer build` options.")


class MpiSettings(BaseModel):
    """How MPI Tasks are launched at this site (``mpi:`` in the site profile)."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)  # built on first validation: see site_memo

    launcher: Literal["auto", "srun", "mpirun"] = Field(
        "auto", description="'auto': srun inside a Slurm allocation, else mpirun if fallback_to_mpirun."
    )
    srun_mpi: str = Field(
        "pmi2",
        description="srun --mpi plugin of the host's MPI: used by the local runtime's ranks (MPICH: pmi2;"
        " S3DF's Open MPI: pmix). Containerised ranks use their image's MPI instead (srun_mpi_offered).",
    )
    srun_mpi_offered: Optional[List[str]] = Field(
        None,
        description="srun --mpi plugins this site's Slurm offers (`srun --mpi=list`), preferred first. A"
        " containerised MPI Task gets the first one its image's MPI speaks; none: exit 2 before launch."
        " Default: [srun_mpi].",
    )
    mpirun_pmi: List[str] = Field(
        default_factory=lambda: ["pmi2", "pmi1"],
        description="PMI interfaces the site's mpirun serves (MPICH's Hydra: pmi2, pmi1; Open MPI's: pmix);"
        " a containerised MPI Task's image must speak one of them.",
    )
    srun_args: List[str] = Field(default_factory=list, description="More srun options.")
    cpu_bind: Optional[str] = Field("cores", description="srun --cpu-bind value (None: leave it to Slurm).")
    mpirun: str = Field("mpirun", description="The off-Slurm launcher (mpirun or mpiexec).")
    mpirun_args: List[str] = Field(default_factory=list, description="More mpirun options.")
    fallback_to_mpirun: bool = Field(True, description="Use mpirun when not inside a Slurm allocation.")
    oversubscribe: bool = Field(False, description="Allow more mpirun ranks than this node has cores.")
    hello_timeout_s: float = Field(120.0, gt=0, description="Every rank must connect within this time.")
    transport: Literal["ipc", "tcp"] = Field(
        "ipc", description="'ipc': unix socket (ranks on the kernel's node); 'tcp': ranks anywhere (token-checked)."
    )
    tcp_host: Optional[str] = Field(None, description="Address ranks use to reach the kernel (default: host name).")

    def offered_srun_mpi(self) -> List[str]:
        """Return the srun MPI plugins this site offers (``srun_mpi_offered``, else ``[srun_mpi]``)."""
        return list(self.srun_mpi_offered) if self.srun_mpi_offered is not None else [self.srun_mpi]


class SlurmSettings(BaseModel):
    """How ``lute-kernel submit`` asks Slurm for a job (``slurm:`` in the site profile).

    These are the site's defaults: a Task's own resources come first, these override them, the
    command line overrides both.
    """

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)  # built on first validation: see site_memo

    partition: Optional[str] = Field(None, description="sbatch --partition (None: the cluster's default partition).")
    account: Optional[str] = Field(None, description="sbatch --account (S3DF: 'lcls:<experiment>').")
    time: Optional[str] = Field(
        None,
        description="sbatch --time ('MM', 'HH:MM:SS', 'D-HH:MM', …). None: the config's task_timeout plus"
        " the kill grace and two minutes.",
    )
    extra_args: List[str] = Field(
        default_factory=list,
        description="More sbatch options, one per #SBATCH line (e.g. '--qos=preemptable', '--exclusive').",
    )
    python: Optional[str] = Field(
        None, description="The Python that runs `-m lute_kernel.cli run` in the job (default: the submitting one)."
    )
    poll_seconds: float = Field(5.0, gt=0, description="How often `submit --wait` asks Slurm for the job's state.")
    command_timeout_s: float = Field(60.0, gt=0, description="Limit on each sbatch/scontrol/sacct call.")


class FlowSettings(BaseModel):
    """How DAG flows run at this site (``flows:`` in the site profile; ``lute-kernel flow``).

    Slurm options here come after each node's own ``slurm_params`` on sbatch's command line, so
    they win (a DAG written for S3DF's ``--partition=milano`` runs on this site's partition).
    """

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)  # built on first validation: see site_memo

    api_url: Optional[str] = Field(
        None,
        description="Prefect server API URL ('http://host:4200/api'); $PREFECT_API_URL wins. None and no"
        " Prefect setting: `flow run` starts Prefect's temporary local server.",
    )
    work_pool: Optional[str] = Field(None, description="Process work pool of `flow deploy` (default of --pool).")
    deployment: str = Field("lute", description="Deployment name of `flow deploy` and `flow trigger` (--name).")
    backend: Literal["local", "slurm"] = Field("local", description="Default backend of flows (--backend).")
    partition: Optional[str] = Field(None, description="sbatch --partition of every slurm node (it wins).")
    account: Optional[str] = Field(
        None, description="sbatch --account of every slurm node; '{experiment}' is the run's ('lcls:{experiment}')."
    )
    sbatch_args: List[str] = Field(
        default_factory=list, description="More sbatch options for every slurm node (e.g. '--overcommit')."
    )
    max_parallel: Optional[int] = Field(None, ge=1, description="Nodes run at once (None: local CPUs; slurm 64).")
    retries: int = Field(0, ge=0, description="Retries of a failed node (--retries; a node's `retries:` wins).")
    retry_delay_s: float = Field(10.0, ge=0, description="Seconds between a node's retries (--retry-delay).")
    elog_runs_url: Optional[str] = Field(
        None,
        description="eLog run documents for !run_type and !branch_daq2 when not given: GET"
        " '<url>/<experiment>/ws/runs/<run>' (S3DF: https://pswww.slac.stanford.edu/ws-jwt/lgbk/lgbk).",
    )
    poll_seconds: float = Field(
        2.0,
        gt=0,
        description="How often `flow trigger` reads the run's state and logs (and the cancel watch's fallback).",
    )
    tag_steps: bool = Field(
        False,
        description="Tag each step's task run with its Task and backend, so Prefect's tag concurrency limits"
        " apply to steps across flows. Off: a tagged task run asks the server for concurrency slots before"
        " it starts (a round trip per step, seconds when the server is busy), and a step is found by its name.",
    )
