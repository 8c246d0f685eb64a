"""Parameter models every Task builds on: the config header and the Task parameter bases.

Owns the pydantic side of a Task: ``AnalysisHeader`` (the config's first document, carried as
``lute_config``), ``TaskParameters`` (first-party), ``ThirdPartyParameters`` (binaries), and
``param()`` which attaches LUTE field metadata (``flag_type``, ``rename_param``, ``is_result``).
Imported inside every image by the worker, so it depends on pydantic and the stdlib only.
Host-only checks (work_dir exists and is writable) are skipped when validating with the
``{"side": "worker"}`` context.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Dict, Iterator, List, NamedTuple, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationInfo, field_validator

WORKER_CONTEXT: Dict[str, str] = {"side": "worker"}
"""Validation context used by the worker: host-only checks are skipped there."""


def on_worker(info: ValidationInfo) -> bool:
    """Return True when a model is being validated inside the worker, not on the host."""
    context = info.context
    return isinstance(context, dict) and context.get("side") == "worker"


def param(
    default: Any = ...,
    description: str = "",
    *,
    flag_type: Optional[str] = None,
    rename_param: Optional[str] = None,
    is_result: bool = False,
    **kwargs: Any,
) -> Any:
    """Declare a Task parameter with LUTE metadata.

    Args:
        default: The default value (``...`` for required).
        description: One line shown by ``lute-kernel explain`` and the docs.
        flag_type: For binaries: ``"-"``, ``"--"`` or ``""`` (positional).
        rename_param: For binaries: the flag name when it differs from the field name.
        is_result: The value of this parameter is the Task's result payload.
        **kwargs: Passed on to ``pydantic.Field``.

    Returns:
        A pydantic ``FieldInfo``.
    """
    extra: Dict[str, Any] = {}
    if flag_type is not None:
        extra["flag_type"] = flag_type
    if rename_param is not None:
        extra["rename_param"] = rename_param
    if is_result:
        extra["is_result"] = True
    return Field(default, description=description, json_schema_extra=extra or None, **kwargs)


def field_extra(model: type[BaseModel], name: str) -> Dict[str, Any]:
    """Return the LUTE metadata (``flag_type`` …) attached to a field with :func:`param`."""
    extra = model.model_fields[name].json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


class AnalysisHeader(BaseModel):
    """The configuration header: shared by every Task section of a file."""

    model_config = ConfigDict(extra="allow")

    title: str = "LUTE Task Configuration"
    experiment: str = ""
    run: Union[int, str] = ""
    date: str = "1970/01/01"
    lute_version: Union[float, str] = 0.1
    task_timeout: PositiveInt = 600
    work_dir: str

    @field_validator("work_dir")
    @classmethod
    def _work_dir_usable(cls, work_dir: str, info: ValidationInfo) -> str:
        # The DB and outputs live here: a run must not start if it cannot write them.
        if on_worker(info):
            return work_dir
        if not work_dir:
            raise ValueError("work_dir is empty; set it in the config header")
        if not os.path.exists(work_dir):
            raise ValueError(f"work_dir {work_dir!r} does not exist")
        if not os.path.isdir(work_dir):
            raise ValueError(f"work_dir {work_dir!r} is not a directory")
        if not os.access(work_dir, os.W_OK | os.X_OK):
            raise ValueError(f"work_dir {work_dir!r} is not writable")
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


class TaskParameters(BaseModel):
    """Base of every Task's parameters. Unknown keys are errors (typos must not pass silently).

    Class options (plain class attributes, upstream's ``Config`` options):
        set_result: the executor fills the result from ``is_result`` fields / ``result_from_params``.
        result_summary: a fixed summary known from the parameters alone.
        impl_schemas: schemas the result conforms to (recorded in the DB).
    """

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    set_result: ClassVar[bool] = False
    result_summary: ClassVar[Optional[str]] = None
    impl_schemas: ClassVar[Optional[str]] = None

    lute_config: AnalysisHeader

    def result_from_params(self) -> Optional[Any]:
        """Return the result the parameters imply, or None.

        Override to compute it (e.g. ``f"{self.outdir}/{self.filename}"``); by default the first
        field declared with ``is_result=True`` when ``set_result`` is on.
        """
        if not self.set_result:
            return None
        for name in type(self).model_fields:
            if field_extra(type(self), name).get("is_result"):
                return getattr(self, name)
        return None

    def task_values(self) -> Dict[str, Any]:
        """Return the parameters without the header, as JSON-able data (for the DB)."""
        return self.model_dump(mode="json", exclude={"lute_config"})


class ThirdPartyParameters(TaskParameters):
    """Base of parameters for binary Tasks: the argv is built from the fields.

    Class options:
        short_flags_use_eq: pass short flags as ``-x=value``.
        long_flags_use_eq: pass long flags as ``--long=value``.
    """

    set_result: ClassVar[bool] = True
    short_flags_use_eq: ClassVar[bool] = False
    long_flags_use_eq: ClassVar[bool] = False

    executable: str


def recorded_value(info: ValidationInfo, task_name: str, key: str) -> Optional[Any]:
    """Return the latest valid value another Task recorded (for DB-backed defaults), or None.

    Use inside a field validator: ``recorded_value(info, "TestWriteOutput", "result.payload")``.
    The header must validate first (``lute_config`` is declared before every Task field). Returns
    None inside the worker: the host has already filled the value in.
    """
    header = info.data.get("lute_config")
    if on_worker(info) or not isinstance(header, AnalysisHeader):
        return None
    from lute_kernel.db import latest_value  # host-only dependency, imported on use

    value = latest_value(header.work_dir, task_name, key)
    misses = _recorded_misses.get()
    if value is None and misses is not None:
        misses.append(RecordedMiss(info.field_name or "", task_name, key))
    return value


class RecordedMiss(NamedTuple):
    """A DB-backed default that found no row: the field asking, and the Task and key it looked for."""

    field: str
    task_name: str
    key: str


_recorded_misses: ContextVar[Optional[List[RecordedMiss]]] = ContextVar("lute_recorded_misses", default=None)


@contextmanager
def noting_recorded_misses() -> Iterator[List[RecordedMiss]]:
    """Within this block, every :func:`recorded_value` that finds no row is noted in the list yielded.

    Flows validate every step before the first one starts; a later step's DB-backed default (a file
    an earlier step writes) has no row yet, and the misses tell that error apart from real ones.
    """
    misses: List[RecordedMiss] = []
    token = _recorded_misses.set(misses)
    try:
        yield misses
    finally:
        _recorded_misses.reset(token)
