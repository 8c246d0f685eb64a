"""What a Task takes and needs, for people (``lute-kernel tasks show``, upstream's ``lute_help``).

Owns describing a registered Task from its class alone: every parameter (nested groups flattened as
the DB names them, ``compound_var.int_var``) with its type, default, description and, for binaries,
the flag it becomes (``-g``, ``--peaks=``, positional); which defaults come from the DB (found by
validating a section in a probe context in which `recorded_value` notes what it would read and
reads nothing: "TestWriteOutput.result.payload of this run"); the image, MPI and GPU needs; and the
JSON schema. Pure apart from that probe's empty temporary work_dir. Must not print.
"""

from __future__ import annotations

import json
import tempfile
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from lute_kernel.parameters import DB_DEFAULTS_PROBE, ParameterGroup, ThirdPartyParameters, field_extra
from lute_kernel.task import TaskSpec, ThirdPartyTask

__all__ = ["ParameterHelp", "TaskHelp", "db_defaults", "describe_task", "parameter_schema"]


@dataclass(frozen=True)
class ParameterHelp:
    """One parameter of a Task."""

    name: str
    type: str
    default: str
    required: bool
    description: str
    flag: str = ""
    from_db: Tuple[str, ...] = ()
    """Where a DB-derived default comes from: ``"TestWriteOutput.result.payload of this run"``."""


@dataclass(frozen=True)
class TaskHelp:
    """A Task at a glance: what it is, where it runs, what it needs, what it takes."""

    name: str
    description: str
    kind: str
    image: str
    aliases: Tuple[str, ...]
    mpi: bool
    min_ranks: int
    ranks: int
    cpus_per_rank: int
    gpus: int
    source: str
    parameters: List[ParameterHelp] = field(default_factory=list)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:
        names = [_type_name(a) for a in args if a is not type(None)]
        joined = " | ".join(names)
        return f"Optional[{joined}]" if type(None) in args else joined
    if origin is typing.Literal:
        return "one of " + ", ".join(json.dumps(a) for a in args)
    if origin is not None:
        base = getattr(origin, "__name__", str(origin)).capitalize()
        return f"{base}[{', '.join(_type_name(a) for a in args)}]" if args else base
    return str(annotation).replace("typing.", "")


def _shown_default(info: Any) -> Tuple[str, bool]:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "", True
    value = info.default_factory() if info.default_factory is not None else info.default
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        return json.dumps(value), False
    except (TypeError, ValueError):
        return str(value), False


def _flag(model: type[BaseModel], name: str) -> str:
    from lute_kernel.argv import _default_flag  # the argv builder's own rule

    if name == "executable":
        return "(the program)"
    extra = field_extra(model, name)
    flag = str(extra.get("flag_type", _default_flag(name)))
    if flag == "":
        return "positional"
    option = f"{flag}{extra.get('rename_param', name)}"
    use_eq = getattr(model, "short_flags_use_eq" if flag == "-" else "long_flags_use_eq", False)
    return f"{option}=" if use_eq else option


def _group_of(annotation: Any) -> Optional[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, ParameterGroup):
        return annotation
    return None


def _parameters(
    model: type[BaseModel], prefix: str, sources: Dict[str, List[str]], binary: bool
) -> List[ParameterHelp]:
    found: List[ParameterHelp] = []
    for name, info in model.model_fields.items():
        if name == "lute_config":
            continue
        full = f"{prefix}{name}"
        group = _group_of(info.annotation)
        if group is not None:
            found.extend(_parameters(group, f"{full}.", sources, False))
            continue
        default, required = _shown_default(info)
        found.append(
            ParameterHelp(
                name=full,
                type=_type_name(info.annotation),
                default=default,
                required=required,
                description=info.description or "",
                flag=_flag(model, name) if binary else "",
                from_db=tuple(sources.get(full, ())),
            )
        )
    return found


def db_defaults(spec: TaskSpec) -> Dict[str, List[str]]:
    """Return ``{parameter: ["OtherTask.column of this run", ...]}`` for defaults read from the DB."""
    probe: List[Tuple[Optional[str], str, str]] = []
    with tempfile.TemporaryDirectory(prefix="lute-help-") as work_dir:
        section = {"lute_config": {"work_dir": work_dir, "experiment": "probe", "run": 1}}
        try:
            spec.cls.Parameters.model_validate(section, context={"side": "probe", DB_DEFAULTS_PROBE: probe})
        except (ValidationError, ValueError, TypeError):
            pass  # required parameters are missing, validators refuse empty values: only the probe matters
    sources: Dict[str, List[str]] = {}
    for name, task, column in probe:
        where = f"{task}.{column} of this run"
        listed = sources.setdefault(name or "(whole section)", [])
        if where not in listed:
            listed.append(where)
    return sources


def describe_task(spec: TaskSpec) -> TaskHelp:
    """Return everything ``tasks show`` prints about a registered Task."""
    cls = spec.cls
    binary = issubclass(cls, ThirdPartyTask) and issubclass(cls.Parameters, ThirdPartyParameters)
    return TaskHelp(
        name=spec.name,
        description=(cls.__doc__ or "").strip(),
        kind=cls.kind,
        image=cls.image,
        aliases=tuple(spec.aliases),
        mpi=cls.mpi,
        min_ranks=cls.min_ranks,
        ranks=cls.resources.ranks,
        cpus_per_rank=cls.resources.cpus_per_rank,
        gpus=cls.resources.gpus,
        source=spec.source,
        parameters=_parameters(cls.Parameters, "", db_defaults(spec), binary),
    )


def parameter_schema(spec: TaskSpec) -> Dict[str, Any]:
    """Return the JSON schema of the Task's config section (the header, ``lute_config``, left out)."""
    schema = spec.cls.Parameters.model_json_schema()
    schema.get("properties", {}).pop("lute_config", None)
    if "required" in schema:
        schema["required"] = [name for name in schema["required"] if name != "lute_config"]
    defs = schema.get("$defs", {})
    if "AnalysisHeader" in defs and "AnalysisHeader" not in json.dumps(schema.get("properties", {})):
        defs.pop("AnalysisHeader")
    return schema
