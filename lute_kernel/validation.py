"""Validating a config against Task Parameters on the host, with errors that name the field.

Owns turning pydantic ``ValidationError``s into one readable ``ParameterError`` (field path,
config line, problem), the whole-file report of ``lute-kernel validate``, and handing the header
its defaults (upstream's: ``$EXPERIMENT``, ``$RUN_NUM`` from the run's host environment, the
site's ``work_dir_default``; see ``lute_kernel.header``). A message lists the
first problems and counts the rest, and shows values shortened, so it stays readable whatever
the input (100,000 unknown keys are ten lines and a count). Launches nothing.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from pydantic import ValidationError

from lute_kernel.config import LoadedConfig
from lute_kernel.errors import ConfigError, InputError, ParameterError, UnknownTaskError, WorkDirError
from lute_kernel.header import HeaderDefaults
from lute_kernel.parameters import AnalysisHeader, TaskParameters
from lute_kernel.registry import Registry
from lute_kernel.task import TaskSpec

if TYPE_CHECKING:
    from lute_kernel.sites import SiteProfile

HEADER_KEY = "lute_config"

MAX_LISTED = 10
"""Problems a message lists one by one; the rest are counted."""

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = _REPR.maxset = 5
_REPR.maxlevel = 2


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: Any) -> str:
    """Return a short repr of a value of any size (never the whole of a large one)."""
    if isinstance(value, str):
        text = repr(value[:64])
    elif isinstance(value, int) and value.bit_length() > 256:
        text = f"an integer of {value.bit_length():,} bits"
    else:
        text = _REPR.repr(value)
    return _shorten(text, 60)


def _explain(error: Dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown parameter"
    if kind == "missing":
        return "required parameter is missing"
    text = _shorten(str(error.get("msg", "invalid")).removeprefix("Value error, "), 200)
    if "input" in error:
        text += f" (got {_shown(error['input'])})"
    return text


def _summarized(lines: List[str], total: int) -> List[str]:
    if total > len(lines):
        lines.append(f"  ... and {total - len(lines):,} more")
    return lines


def _describe(config: LoadedConfig, section: str, exc: ValidationError) -> List[str]:
    lines = []
    errors = exc.errors()
    for error in errors[:MAX_LISTED]:
        loc = ".".join(str(part) for part in error["loc"])
        line = config.line_of(f"{section}.{loc}") or config.line_of(section)
        where = f" (line {line})" if line else ""
        lines.append(f"  {_shorten(loc, 120)}{where}: {_explain(dict(error))}")
    return _summarized(lines, len(errors))


def header_defaults(site: Optional[SiteProfile], env: Optional[Mapping[str, str]]) -> HeaderDefaults:
    """Return what fills a header's blanks for a run at ``site`` with host environment ``env``.

    No site: only the environment's (an empty ``work_dir`` stays an error). No env: an empty one.
    """
    env = dict(env or {})
    if site is None:
        return HeaderDefaults(env=env)
    where = f"site {site.name!r}" + (f" ({site.source})" if site.source else "")
    return HeaderDefaults(
        env=env, work_dir_default=site.work_dir_default, data_root=site.data_root_for(env), site=where
    )


def header_with_defaults(
    config: LoadedConfig, *, site: Optional[SiteProfile] = None, env: Optional[Mapping[str, str]] = None
) -> Dict[str, Any]:
    """Return the substituted header with upstream's blanks filled in, unchecked (``config show``).

    Raises:
        ConfigError: A default cannot be made (``$RUN_NUM`` is not a run number, …), naming the field.
    """
    header = dict(config.header())
    defaults = header_defaults(site, env)
    for key, fill in (("experiment", defaults.experiment), ("run", defaults.run)):
        value = header.get(key, "")
        if isinstance(value, str):
            try:
                header[key] = fill(value)
            except ValueError as exc:
                raise ConfigError(str(exc), path=str(config.path), line=config.line_of(f"{HEADER_KEY}.{key}")) from None
    if header.get("work_dir", "") == "" and defaults.work_dir_default:
        try:
            header["work_dir"] = defaults.work_dir(header.get("experiment") or None)
        except ValueError as exc:
            line = config.line_of(f"{HEADER_KEY}.work_dir")
            raise ConfigError(str(exc), path=str(config.path), line=line) from None
    return header


def validate_header(
    config: LoadedConfig, *, site: Optional[SiteProfile] = None, env: Optional[Mapping[str, str]] = None
) -> AnalysisHeader:
    """Validate the config header; a bad work_dir raises WorkDirError, anything else ConfigError.

    Args:
        config: The loaded config.
        site: The site of the run: its ``work_dir_default`` fills an empty ``work_dir`` (None: no default).
        env: The run's host environment: ``$EXPERIMENT`` and ``$RUN_NUM`` fill an empty experiment and run
            (without a site and an environment, the header is taken as written).
    """
    # Neither a site nor an environment: a header taken as written (no upstream defaults to fill in).
    context = header_defaults(site, env).context() if site is not None or env is not None else {"side": "host"}
    try:
        return AnalysisHeader.model_validate(config.header(), context=context)
    except ValidationError as exc:
        for error in exc.errors():
            if error["loc"] and error["loc"][0] == "work_dir":
                line = config.line_of(f"{HEADER_KEY}.work_dir")
                problem = _shorten(str(error["msg"]).removeprefix("Value error, "), 300)
                if error["type"] == "missing":
                    problem = "work_dir is required in the header"
                elif error["type"] != "value_error":  # pydantic's own words do not name the field
                    problem = f"work_dir: {_explain(dict(error))}"
                raise WorkDirError(f"{config.path}{f':{line}' if line else ''}: {problem}") from None
        errors = exc.errors()
        details = "; ".join(
            f"{_shorten('.'.join(map(str, e['loc'])), 120)}: {_explain(dict(e))}" for e in errors[:MAX_LISTED]
        )
        more = f"; ... and {len(errors) - MAX_LISTED:,} more" if len(errors) > MAX_LISTED else ""
        line = config.line_of(f"{HEADER_KEY}.{errors[0]['loc'][0]}") if errors and errors[0]["loc"] else None
        raise ConfigError(f"invalid header: {details}{more}", path=str(config.path), line=line) from None


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


def validate_file(
    config: LoadedConfig,
    registry: Registry,
    *,
    site: Optional[SiteProfile] = None,
    env: Optional[Mapping[str, str]] = None,
) -> List[SectionReport]:
    """Validate the header (with ``site``'s and ``env``'s defaults) and every section.

    Unknown Tasks and bad substitutions are reported per section.
    """
    reports: List[SectionReport] = []
    try:
        header = validate_header(config, site=site, env=env)
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
