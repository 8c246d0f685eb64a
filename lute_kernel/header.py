"""The config header (``AnalysisHeader``) and how an upstream header's blanks are filled in.

Owns the first document of a config, carried by every Task's parameters as ``lute_config``, and
upstream LUTE's header semantics (``lute/io/models/base.py``): an empty ``experiment`` is
``$EXPERIMENT`` (upstream's placeholder ``EXPX00000`` when that is unset too); an empty or missing
``run`` is the number before the first ``_`` of ``$RUN_NUM`` (the eLog sets ``12`` or
``12_<stamp>``), as an integer; an empty ``work_dir`` is the site's default folder for the
experiment (S3DF: ``<data root>/<hutch>/<experiment>/scratch``), which must exist already: like
upstream, nothing creates it. Upstream reads ``os.environ`` and a hard-coded S3DF path; here both
come from a :class:`HeaderDefaults` in the validation context (the host environment a run was
given, the site profile's ``work_dir_default``), so without one nothing is filled in.

Imported inside every image by the worker: pydantic and the stdlib only. Host-only checks (the
folder exists and is writable) and the defaults are skipped with the ``{"side": "worker"}``
context: the host has filled every value in before the worker sees it.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

MAX_TASK_TIMEOUT = 2_000_000
"""Seconds (about 23 days). The executor waits in ``poll()``, whose timeout is milliseconds in a C
int: 2**31 ms is 2,147,483 s, so no accepted ``task_timeout`` can overflow it."""

WORKER_CONTEXT: Dict[str, str] = {"side": "worker"}
"""Validation context used by the worker: host-only checks are skipped there."""

EXPERIMENT_PLACEHOLDER = "EXPX00000"
"""Upstream's experiment when the header leaves it empty and ``$EXPERIMENT`` is unset."""

WORK_DIR_FIELDS = ("data_root", "hutch", "experiment")
"""The names a site's ``work_dir_default`` pattern may use."""


def on_worker(info: ValidationInfo) -> bool:
    """Return True when a model is being validated inside the worker, not on the host."""
    context = info.context
    return isinstance(context, dict) and context.get("side") == "worker"


def pattern_problem(pattern: str) -> Optional[str]:
    """Return what is wrong with a ``work_dir_default`` pattern, or None (only the names above, no specs)."""
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        return f"not a format pattern: {exc}"
    for _text, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in WORK_DIR_FIELDS:
            return f"unknown name {{{name}}} (known: {', '.join('{' + n + '}' for n in WORK_DIR_FIELDS)})"
        if spec or conversion:
            return f"{{{name}}} takes no format spec or conversion"
    return None


@dataclass(frozen=True)
class HeaderDefaults:
    """What fills an upstream header's blanks on the host: the run's environment and the site's default.

    Attributes:
        env: The host environment of the run (``$EXPERIMENT``, ``$RUN_NUM``), never read from
            ``os.environ`` here.
        work_dir_default: The site's pattern for an empty ``work_dir`` (None: the site has none).
        data_root: What ``{data_root}`` stands for in the pattern.
        site: Names the site, and where its default is set, in error messages.
    """

    env: Mapping[str, str] = field(default_factory=dict)
    work_dir_default: Optional[str] = None
    data_root: Optional[str] = None
    site: str = ""

    def context(self) -> Dict[str, Any]:
        """Return the validation context that makes ``AnalysisHeader`` fill blanks from these defaults."""
        return {"side": "host", "header_defaults": self}

    def experiment(self, experiment: str) -> str:
        """Return ``experiment``, or ``$EXPERIMENT`` (else upstream's placeholder) when it is empty."""
        if experiment != "":
            return experiment
        return self.env.get("EXPERIMENT", EXPERIMENT_PLACEHOLDER)

    def run(self, run: Union[int, str]) -> Union[int, str]:
        """Return ``run``, or the run number of ``$RUN_NUM`` when it is empty (unset ``$RUN_NUM``: ``""``).

        Raises:
            ValueError: ``$RUN_NUM`` does not start with a run number.
        """
        raw = self.env.get("RUN_NUM", "")
        if run != "" or raw == "":
            return run
        number = raw.split("_")[0]  # "12_<stamp>" from the eLog: the number is the first part
        if not number.strip().isdigit():
            shown = repr(raw) if len(raw) <= 60 else repr(raw[:57] + "...")
            raise ValueError(f"run is empty and $RUN_NUM {shown} does not start with a run number (12 or 12_<stamp>)")
        return int(number)

    def work_dir(self, experiment: Optional[str]) -> str:
        """Return the site's folder for an empty ``work_dir``.

        Raises:
            ValueError: The site has no default, or the experiment cannot name a folder.
        """
        if not self.work_dir_default:
            return _no_default(self.site)
        if not experiment or experiment in (".", "..") or "/" in experiment or "\0" in experiment:
            raise ValueError(
                f"work_dir is empty and experiment {experiment!r} cannot name the site's default folder"
                f" ({self.work_dir_default})"
            )
        if "{data_root}" in self.work_dir_default and not self.data_root:
            raise ValueError(f"work_dir is empty and {self.site} sets no data_root for its work_dir_default")
        return self.work_dir_default.format(data_root=self.data_root, hutch=experiment[:3], experiment=experiment)


def _no_default(site: str) -> str:
    if not site:
        raise ValueError("work_dir is empty; set it in the config header")
    raise ValueError(f"work_dir is empty and {site} has no work_dir_default: set work_dir in the config header")


def _defaults(info: ValidationInfo) -> Optional[HeaderDefaults]:
    context = info.context
    found = context.get("header_defaults") if isinstance(context, dict) else None
    return found if isinstance(found, HeaderDefaults) else None


def _shown(path: str) -> str:
    return repr(path) if len(path) <= 200 else repr(path[:197] + "...")


class AnalysisHeader(BaseModel):
    """The configuration header: shared by every Task section of a file."""

    model_config = ConfigDict(extra="allow")

    title: str = "LUTE Task Configuration"
    experiment: str = Field("", validate_default=True)
    run: Union[int, str] = Field("", validate_default=True)
    date: str = "1970/01/01"
    lute_version: Union[float, str] = 0.1
    task_timeout: int = Field(600, gt=0, le=MAX_TASK_TIMEOUT)
    work_dir: str = Field("", validate_default=True)

    @field_validator("task_timeout", "run", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads true as 1: "task_timeout: true" would time a Task out after one second.
        if isinstance(value, bool):
            raise ValueError(f"{info.field_name} must be a number, not {str(value).lower()}")
        return value

    @field_validator("experiment")
    @classmethod
    def _experiment_from_env(cls, experiment: str, info: ValidationInfo) -> str:
        defaults = _defaults(info)
        return defaults.experiment(experiment) if defaults is not None and not on_worker(info) else experiment

    @field_validator("run")
    @classmethod
    def _run_from_env(cls, run: Union[int, str], info: ValidationInfo) -> Union[int, str]:
        defaults = _defaults(info)
        if defaults is not None and not on_worker(info):
            run = defaults.run(run)
        # gen_cfg.run is an SQLite INTEGER (64-bit): refuse here what the DB would refuse after the run.
        if isinstance(run, int) and not -(2**63) <= run < 2**63:
            raise ValueError("run is too large for a run number")
        return run

    @field_validator("work_dir")
    @classmethod
    def _work_dir_usable(cls, work_dir: str, info: ValidationInfo) -> str:
        # The DB and outputs live here: a run must not start if it cannot write them.
        if on_worker(info):
            return work_dir
        why = ""
        if not work_dir:
            defaults = _defaults(info)
            if defaults is None:
                raise ValueError("work_dir is empty; set it in the config header")
            experiment = info.data.get("experiment")
            work_dir = defaults.work_dir(experiment if isinstance(experiment, str) else None)
            why = f" (work_dir is empty: the default of {defaults.site} for experiment {experiment})"
        shown = _shown(work_dir)
        if not os.path.isabs(work_dir) and why:
            raise ValueError(f"work_dir {shown}{why} is not an absolute path")
        if not os.path.exists(work_dir):
            raise ValueError(f"work_dir {shown}{why} does not exist")
        if not os.path.isdir(work_dir):
            raise ValueError(f"work_dir {shown}{why} is not a directory")
        if not os.access(work_dir, os.W_OK | os.X_OK):
            raise ValueError(f"work_dir {shown}{why} is not writable")
        return work_dir

    def db_header(self) -> Dict[str, Any]:
        """Return the fields recorded in the ``gen_cfg`` table."""
        return {
            "title": self.title,
            "experiment": self.experiment,
            "run": self.run,
            "date": self.date,
            "lute_version": self.lute_version,
            "task_timeout": self.task_timeout,
        }
