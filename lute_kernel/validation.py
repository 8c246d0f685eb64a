"""Validating a config against Task Parameters on the host, with errors that name the field.

Owns turning pydantic ``ValidationError``s into one readable ``ParameterError`` (field path,
config line, problem) and the whole-file report of ``lute-kernel validate``. Launches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from pydantic import ValidationError

from lute_kernel.config import LoadedConfig
from lute_kernel.errors import ConfigError, InputError, ParameterError, UnknownTaskError, WorkDirError
from lute_kernel.parameters import AnalysisHeader, TaskParameters
from lute_kernel.registry import Registry
from lute_kernel.task import TaskSpec

HEADER_KEY = "lute_config"


def _explain(error: Dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown parameter"
    if kind == "missing":
        return "required parameter is missing"
    text = str(error.get("msg", "invalid"))
    if "input" in error and kind not in ("missing",):
        shown = repr(error["input"])
        text += f" (got {shown if len(shown) < 60 else shown[:57] + '...'})"
    return text


def _describe(config: LoadedConfig, section: str, exc: ValidationError) -> List[str]:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        line = config.line_of(f"{section}.{loc}") or config.line_of(section)
        where = f" (line {line})" if line else ""
        lines.append(f"  {loc}{where}: {_explain(dict(error))}")
    return lines


def validate_header(config: LoadedConfig) -> AnalysisHeader:
    """Validate the config header; a bad work_dir raises WorkDirError, anything else ConfigError."""
    try:
        return AnalysisHeader.model_validate(config.header())
    except ValidationError as exc:
        for error in exc.errors():
            if error["loc"] and error["loc"][0] == "work_dir":
                line = config.line_of(f"{HEADER_KEY}.work_dir")
                problem = str(error["msg"]).removeprefix("Value error, ")
                if error["type"] == "missing":
                    problem = "work_dir is required in the header"
                raise WorkDirError(f"{config.path}{f':{line}' if line else ''}: {problem}") from None
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid header: {details}", path=str(config.path)) from None


def validate_parameters(spec: TaskSpec, config: LoadedConfig, header: AnalysisHeader) -> TaskParameters:
    """Validate the Task's section (empty when absent: defaults apply) against its Parameters."""
    section: Dict[str, Any] = dict(config.section(spec.name)) if config.has_section(spec.name) else {}
    section.pop(HEADER_KEY, None)
    try:
        return spec.cls.Parameters.model_validate({**section, HEADER_KEY: header})
    except ValidationError as exc:
        lines = _describe(config, spec.name, exc)
        raise ParameterError(f"{config.path}: invalid parameters for Task {spec.name}:\n" + "\n".join(lines)) from None


@dataclass
class SectionReport:
    """The verdict on one section of a config file."""

    section: str
    ok: bool
    message: str = ""
    task: Optional[str] = None


def validate_file(config: LoadedConfig, registry: Registry) -> List[SectionReport]:
    """Validate the header and every section; unknown Tasks and bad substitutions are reported."""
    reports: List[SectionReport] = []
    try:
        header = validate_header(config)
    except InputError as exc:
        return [SectionReport("header", False, str(exc))]
    reports.append(SectionReport("header", True))
    for name in config.section_names():
        try:
            spec = registry.get(name)
            if spec.name != name:  # runs read the Task's own section: this one would be silently ignored
                raise UnknownTaskError(
                    f"section {name!r} is an alias of Task {spec.name}; name the section {spec.name!r}"
                    " (sections are read under the Task's name only)"
                )
            validate_parameters(spec, config, header)
            reports.append(SectionReport(name, True, task=spec.name))
        except InputError as exc:
            reports.append(SectionReport(name, False, str(exc)))
    return reports
