"""Parameter models every Task builds on: the Task parameter bases (and the header, re-exported).

Owns the pydantic side of a Task: ``TaskParameters`` (first-party), ``ThirdPartyParameters`` (binaries),
``ParameterGroup`` (a nested mapping of parameters), and ``param()`` which attaches LUTE field
metadata (``flag_type``, ``rename_param``, ``is_result``). Unknown keys are errors at every level
of a Task's parameters: a nested pydantic model that does not forbid them is made to when the
Task's Parameters class is defined.
The header every Task carries as ``lute_config`` (``AnalysisHeader``, with upstream's blanks
filled in) lives in ``lute_kernel.header`` and is re-exported here. Imported inside every image by
the worker, so it depends on pydantic and the stdlib only. Host-only checks are skipped when
validating with the ``{"side": "worker"}`` context.
"""

from __future__ import annotations

import typing
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Dict, Iterator, List, NamedTuple, Optional, Set

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

from lute_kernel.header import MAX_TASK_TIMEOUT, WORKER_CONTEXT, AnalysisHeader, HeaderDefaults, on_worker

DB_DEFAULTS_PROBE = "db_defaults"
"""Validation context key: a list that `recorded_value` appends ``(field, Task, column)`` to, reading nothing."""

__all__ = [
    "DB_DEFAULTS_PROBE",
    "MAX_TASK_TIMEOUT",
    "WORKER_CONTEXT",
    "AnalysisHeader",
    "HeaderDefaults",
    "ParameterGroup",
    "RecordedMiss",
    "TaskParameters",
    "TemplateParameters",
    "ThirdPartyParameters",
    "field_extra",
    "noting_recorded_misses",
    "on_worker",
    "param",
    "recorded_value",
]


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


class ParameterGroup(BaseModel):
    """Base of a nested group of parameters (a mapping inside a Task section).

    Unknown keys are errors, as in the section itself: ``compound_var.bogus`` is a typo to report,
    not a value to drop. A plain ``BaseModel`` used as a parameter's type is made to forbid them
    too, when the Task's Parameters class is defined; deriving from this class says so up front.
    """

    model_config = ConfigDict(extra="forbid")


class TemplateParameters(BaseModel):
    """Variables of a third-party program's config template (upstream's ``TemplateParameters``).

    Deliberately open: every key, declared or not, is a variable for the template (a ``.phil`` or a
    producer config), so unknown keys are kept instead of refused. The one kind of nested model the
    "unknown keys are errors" rule leaves alone.
    """

    model_config = ConfigDict(extra="allow")


def _models_in(annotation: Any) -> List[type[BaseModel]]:
    """Return the pydantic models a field's type names: ``M``, ``Optional[List[M]]``, ``Dict[str, M]``."""
    found: List[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        kind = stack.pop()
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found.append(kind)
        else:
            stack.extend(typing.get_args(kind))
    return found


def _forbid_unknown_keys(model: type[BaseModel]) -> None:
    """Make every model nested in ``model``'s fields forbid unknown keys, and rebuild what changed."""
    order: List[type[BaseModel]] = []
    _nested_inside_out(model, order, set())
    changed = False
    for nested in order:
        if nested.model_config.get("extra") != "forbid":
            nested.model_config["extra"] = "forbid"
            changed = True
    if changed:
        # A model's validator embeds those of the models it contains: rebuild from the inside out.
        for nested in order:
            nested.model_rebuild(force=True, raise_errors=False)
        model.model_rebuild(force=True, raise_errors=False)


def _nested_inside_out(model: type[BaseModel], order: List[type[BaseModel]], seen: Set[type[BaseModel]]) -> None:
    """Append the models nested in ``model`` to ``order``, each after the models it contains."""
    for field in model.model_fields.values():
        for nested in _models_in(field.annotation):
            if nested in seen or issubclass(nested, (AnalysisHeader, TaskParameters, TemplateParameters)):
                continue
            seen.add(nested)  # before descending: a model that contains itself ends here
            _nested_inside_out(nested, order, seen)
            order.append(nested)


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

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Make nested parameter models reject unknown keys, like the section itself."""
        super().__pydantic_init_subclass__(**kwargs)
        _forbid_unknown_keys(cls)

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
    """Return the latest valid value another Task recorded for this run (DB-backed defaults), or None.

    Use inside a field validator: ``recorded_value(info, "TestWriteOutput", "result.payload")``.
    Reads the newest valid row of ``task_name`` whose header had the same experiment and run as
    this one (upstream filters on the run: several runs share a work_dir, flows run them in
    parallel), never a row of another run. The header must validate first (``lute_config`` is
    declared before every Task field). Returns None inside the worker: the host has already
    filled the value in.

    Raises:
        ValueError: lute.db exists but cannot be read (so the field error names it: exit 2).
    """
    probe = info.context.get(DB_DEFAULTS_PROBE) if isinstance(info.context, dict) else None
    if isinstance(probe, list):  # `lute-kernel tasks show` asks which defaults come from the DB
        probe.append((info.field_name, task_name, key))
        return None
    header = info.data.get("lute_config")
    if on_worker(info) or not isinstance(header, AnalysisHeader):
        return None
    from lute_kernel.db import latest_value  # host-only dependency, imported on use
    from lute_kernel.errors import DatabaseError

    try:
        value = latest_value(header.work_dir, task_name, key, experiment=header.experiment, run=header.run)
    except DatabaseError as err:
        raise ValueError(f"cannot read {task_name}'s {key} from the database: {err}") from None
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
