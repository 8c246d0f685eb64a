"""Site profiles: where a site keeps things and how it launches (``config/sites/<name>.yaml``).

Owns the ``SiteProfile`` model (unknown keys and wrong types are errors, so a typo in a profile is
caught), finding profiles (a path; ``LUTE_SITE_PATH``; the packaged ones, or ``LUTE_SITES_DIR``
instead), loading them so that any broken file is a ``ConfigError`` naming the file and the field
(never a traceback), and checking ``run_dir_root`` before a run. Paths and cluster defaults live
in the YAML files, never in code.
"""

from __future__ import annotations

import os
import stat
import string
import tempfile
from pathlib import Path
from typing import Any, List, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from lute_kernel.errors import ConfigError, InputError
from lute_kernel.header import pattern_problem
from lute_kernel.site_files import (
    DEFAULT_SITE,
    available_sites,
    find_site_file,
    looks_like_path,
    site_name,
    sites_dir,
)
from lute_kernel.site_memo import keep_profile, kept_profile
from lute_kernel.site_reading import parse_profile, read_profile_text
from lute_kernel.site_settings import ApptainerSettings, FlowSettings, ImageSettings, MpiSettings, SlurmSettings

__all__ = [
    "DEFAULT_SITE",
    "ApptainerSettings",
    "FlowSettings",
    "ImageSettings",
    "MpiSettings",
    "SiteProfile",
    "SlurmSettings",
    "available_sites",
    "load_site",
    "sites_dir",
]


MAX_PROFILE_BYTES = 1 << 20
"""A site profile is a page of settings; anything bigger is not one (and is not read whole)."""

MAX_SOCKET_PATH = 107
"""Longest unix socket path (``sun_path`` holds 108 bytes with the terminating NUL)."""

RUN_DIR_SUFFIX = "/lute-000000000000/s"
"""What the executor appends to ``run_dir_root``: the run directory (``lute-`` + 12 hex) and the socket."""

MAX_LISTED_PROBLEMS = 5

SUMMARY_PLACEHOLDERS = frozenset({"experiment", "hutch", "run"})
"""What ``elog_summary_dir`` may name: upstream's ``/sdf/data/lcls/ds/{hutch}/{experiment}/stats/summary``."""
DATA_ROOT_ENV = "LUTE_DATA_ROOT"
"""Overrides a site's ``data_root`` (in the run's host environment): tests, mirrors, a copy of the data."""


class SiteProfile(BaseModel):
    """Settings of one site, validated; the same model documents every option."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)  # built on first validation: see site_memo

    name: str
    description: str = ""
    runtime: Literal["local", "apptainer"] = Field("local", description="Default runtime (`--runtime` overrides).")
    launcher: Literal["direct", "srun", "mpirun"] = Field("direct", description="Launcher of single-rank Tasks.")
    run_dir_root: Optional[str] = Field(
        None,
        description="Where per-run socket folders go (default: $TMPDIR). An existing, writable folder with a short"
        f" absolute path: unix socket paths have a {MAX_SOCKET_PATH}-byte limit.",
    )
    kill_grace_seconds: float = Field(10.0, ge=0, description="SIGTERM to SIGKILL grace period.")
    env_allowlist: List[str] = Field(
        default_factory=list,
        description="Extra host variables (names, or prefixes ending in '*') passed into Tasks.",
    )
    elog_url: Optional[str] = Field(None, description="eLog base URL; summaries are posted there as run parameters.")
    elog_summary_dir: Optional[str] = Field(
        None,
        description="Where the eLog picks up summary plots (an absolute folder; {experiment}, {hutch} — the"
        " experiment's first three letters — and {run} are filled in): a run's figures are written to"
        " <dir>/<display_name>/report.html, one self-contained page per display name. Unset: not written.",
    )
    data_root: Optional[str] = Field(
        None,
        description="Where the experiments' folders are, <data_root>/<hutch>/<experiment> (S3DF: /sdf/data/lcls/ds);"
        f" ${DATA_ROOT_ENV} overrides.",
    )
    work_dir_default: Optional[str] = Field(
        None,
        description="The work_dir of a config header that leaves it empty (upstream's default): a pattern of"
        " {data_root}, {hutch} (the experiment's first three letters) and {experiment}. None: an empty work_dir"
        " is an error naming the field.",
    )
    ipc_max_bytes: int = Field(1 << 30, gt=0, description="Cap on one IPC message.")
    apptainer: ApptainerSettings = Field(default_factory=ApptainerSettings)
    mpi: MpiSettings = Field(default_factory=MpiSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)
    flows: FlowSettings = Field(default_factory=FlowSettings)

    _source: Optional[str] = PrivateAttr(None)
    _by_path: bool = PrivateAttr(False)

    @field_validator("elog_summary_dir")
    @classmethod
    def _summary_dir_template(cls, template: Optional[str]) -> Optional[str]:
        if template is None:
            return None
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
            bad = [n for n in names if n not in SUMMARY_PLACEHOLDERS]
        except ValueError as exc:
            raise ValueError(f"not a folder template: {exc}") from None
        if bad:
            raise ValueError(f"unknown placeholder {{{bad[0]}}}; use {{experiment}}, {{hutch}} and {{run}}")
        if not template.startswith("/"):
            raise ValueError("must be an absolute path")
        return template

    def elog_summary_root(self, experiment: str, run: Any) -> Optional[Path]:
        """Return the folder eLog summaries of ``experiment``/``run`` go in, or None when the site has none."""
        if self.elog_summary_dir is None:
            return None
        values = {"experiment": experiment, "hutch": experiment[:3], "run": run}
        return Path(self.elog_summary_dir.format(**values))

    @field_validator("work_dir_default")
    @classmethod
    def _a_known_pattern(cls, pattern: Optional[str]) -> Optional[str]:
        problem = pattern_problem(pattern) if pattern is not None else None
        if problem is not None:
            raise ValueError(problem)
        return pattern

    def data_root_for(self, env: Mapping[str, str]) -> Optional[str]:
        """Return the data root for a run whose host environment is ``env`` (``$LUTE_DATA_ROOT`` wins).

        Raises:
            ConfigError: The root is not an absolute path (names the variable or the profile's field).
        """
        override = env.get(DATA_ROOT_ENV)
        root = override or self.data_root
        if root is None:
            return None
        expanded = os.path.expanduser(root)
        if not os.path.isabs(expanded):
            if override:
                raise InputError(f"${DATA_ROOT_ENV} {root!r} is not an absolute path")
            raise ConfigError(f"{root!r} is not an absolute path", path=self._source, key="data_root")
        return expanded

    @property
    def source(self) -> Optional[str]:
        """The profile file this was loaded from (None: built in code)."""
        return self._source

    @property
    def reference(self) -> str:
        """What ``--site`` takes to load this profile again: its file's path if it was named by path, else its name."""
        return self._source if self._by_path and self._source else self.name

    def socket_root(self) -> Path:
        """Return the folder that holds run directories."""
        return Path(self.run_dir_root or tempfile.gettempdir())

    def check_run_dir_root(self) -> Path:
        """Return the folder run directories go in, after checking it is usable; call it before a run.

        Raises:
            ConfigError: ``run_dir_root`` is not absolute, missing, not a folder, not writable, or so long
                that the run's socket path would pass the unix limit (names the profile and the field).
            InputError: The same for ``$TMPDIR``, the folder used when ``run_dir_root`` is not set.
        """
        root = self.socket_root()
        problem = _run_dir_root_problem(str(root), needs_socket=self.mpi.transport == "ipc")
        if problem is None:
            return root
        if self.run_dir_root is None:
            raise InputError(
                f"TMPDIR {str(root)!r} (where run directories go: the site sets no run_dir_root) {problem}"
            )
        raise ConfigError(f"{self.run_dir_root!r} {problem}", path=self._source, key="run_dir_root")


def _run_dir_root_problem(root: str, *, needs_socket: bool) -> Optional[str]:
    if "\0" in root:
        return "holds a NUL character"
    if not os.path.isabs(root):
        return "is not an absolute path"
    try:
        info = os.stat(root)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be used: {exc.strerror or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if not os.access(root, os.W_OK | os.X_OK):
        return "is not writable by this user"
    socket = len(os.fsencode(root.rstrip("/") + RUN_DIR_SUFFIX))
    if needs_socket and socket > MAX_SOCKET_PATH:
        return (
            f"is too long: the run's socket path would be {socket} bytes, over the unix limit of {MAX_SOCKET_PATH};"
            " use a shorter folder"
        )
    return None


def load_site(name: Optional[str] = None) -> SiteProfile:
    """Load a site profile by name or path (default: ``LUTE_SITE`` or ``local``).

    A name is looked up in ``LUTE_SITE_PATH``, then in the shipped profiles (``LUTE_SITES_DIR``
    instead when set); a value with a ``/`` or ending in ``.yaml`` is a profile file (its name is
    the file's stem). Raises ``ConfigError`` naming the file (and field) for anything wrong with it.
    """
    name = site_name(name)
    found = find_site_file(name)
    if looks_like_path(name):
        assert found is not None
        return _load_profile(found, found.stem, by_path=True)
    if found is not None:
        return _load_profile(found, name, by_path=False)
    known = ", ".join(available_sites()) or "none"
    raise ConfigError(f"unknown site {name!r} (known: {known})", path=str(sites_dir() / f"{name}.yaml"))


def _load_profile(path: Path, name: str, *, by_path: bool) -> SiteProfile:
    text = read_profile_text(path)
    profile = kept_profile(SiteProfile, text, name)  # this exact text validated before: no parse, no validation
    if profile is None:
        profile = _validated(parse_profile(text, str(path)), name, path)
        keep_profile(profile, text, name)
    profile._source = str(path)
    profile._by_path = by_path
    return profile


def _validated(data: Any, name: str, path: Path) -> SiteProfile:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"a site profile is a mapping of settings (runtime: …, mpi: …), not a {type(data).__name__}",
            path=str(path),
        )
    try:
        profile = SiteProfile.model_validate({"name": name, **data})
    except ValidationError as exc:
        errors = exc.errors()
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:MAX_LISTED_PROBLEMS]]
        more = f"; … and {len(errors) - MAX_LISTED_PROBLEMS} more" if len(errors) > MAX_LISTED_PROBLEMS else ""
        raise ConfigError(f"invalid site profile: {'; '.join(problems)}{more}", path=str(path)) from None
    except RecursionError:
        raise ConfigError("invalid site profile: nested too deeply", path=str(path)) from None
    return profile
