"""Load an upstream LUTE configuration file, unchanged, into a :class:`LoadedConfig`.

Owns reading the file and checking its shape: one header document (a mapping with
``work_dir``) and an optional second document mapping each Task's class name to its section.
Substitution is delegated to :mod:`lute_kernel.config.substitution`, lazily and per section.
Must not validate parameter types (the pydantic models do), know which Tasks exist, or touch
``os.environ`` beyond reading it when no ``env`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from lute_kernel import parse_cache
from lute_kernel.config.documents import YamlDocument
from lute_kernel.config.limits import DEFAULT_LIMITS, ConfigLimits
from lute_kernel.config.reading import read_config_text
from lute_kernel.config.substitution import HEADER, Resolver
from lute_kernel.errors import ConfigError
from lute_kernel.parse_memo import parsed

DEFAULT_TASK_TIMEOUT = 600
"""Seconds; what ``task_timeout`` is when the header leaves it out."""

PathLike = Union[str, "os.PathLike[str]"]


class LoadedConfig:
    """A parsed configuration file; substitutions are resolved on request.

    Attributes:
        path: The file it was read from.
        raw_header: The header as parsed, unsubstituted.
        raw_sections: Section name to section mapping as parsed, unsubstituted
            (a section left empty in the file is ``{}``).
    """

    def __init__(
        self,
        path: Path,
        raw_header: Dict[str, Any],
        raw_sections: Dict[str, Any],
        lines: Dict[str, int],
        env: Mapping[str, str],
        limits: ConfigLimits = DEFAULT_LIMITS,
    ) -> None:
        self.path = path
        self.raw_header = raw_header
        self.raw_sections = raw_sections
        self._lines = lines
        header = dict(raw_header)
        header.setdefault("task_timeout", DEFAULT_TASK_TIMEOUT)
        self._resolver = Resolver(header, raw_sections, env, locate=self.line_of, path=str(path), limits=limits)

    def header(self) -> Dict[str, Any]:
        """Return the header with substitutions resolved and ``task_timeout`` defaulted.

        Raises:
            ConfigError: A substitution in the header (or what it refers to) fails.
        """
        return self._resolver.header()

    def section_names(self) -> List[str]:
        """Return the section names in file order."""
        return list(self.raw_sections)

    def has_section(self, name: str) -> bool:
        """Return whether the file has a section called ``name``."""
        return name in self.raw_sections

    def section(self, name: str) -> Dict[str, Any]:
        """Return one section with its substitutions resolved.

        Only that section and what it refers to are resolved, so errors elsewhere do not matter.

        Raises:
            ConfigError: The section is absent, or one of its substitutions fails.
        """
        if name not in self.raw_sections:
            raise ConfigError("the configuration has no section of that name", path=str(self.path), key=name)
        return self._resolver.section(name)

    def resolved(self) -> Dict[str, Any]:
        """Return ``{"header": {...}, "sections": {name: {...}}}`` fully resolved.

        Raises:
            ConfigError: The first substitution error, in file order.
        """
        errors = self.errors()
        if errors:
            raise errors[0]
        return {
            "header": self.header(),
            "sections": {name: self.section(name) for name in self.raw_sections},
        }

    def errors(self) -> List[ConfigError]:
        """Return every substitution error in the header and all sections (empty when clean)."""
        return self._resolver.errors()

    def line_of(self, dotted_key: str) -> Optional[int]:
        """Return the 1-based line of a key, or None when the file does not have it.

        Args:
            dotted_key: ``Section.key.sub`` for sections (list items by index),
                ``lute_config.key`` for the header.
        """
        return self._lines.get(dotted_key)


def load_config(
    path: PathLike, env: Optional[Mapping[str, str]] = None, *, limits: ConfigLimits = DEFAULT_LIMITS
) -> LoadedConfig:
    """Read and check a configuration file.

    Args:
        path: The YAML file.
        env: Environment for ``{{ $VAR }}`` substitutions; defaults to a snapshot of
            ``os.environ``.
        limits: Bounds on the file's size, nesting, aliases and substitutions.

    Returns:
        The parsed configuration; substitutions are resolved when asked for.

    Raises:
        ConfigError: The file is missing, unreadable, not a regular file, too large, not YAML,
            beyond a limit, or not shaped like a configuration (1 or 2 documents, a mapping
            header with ``work_dir``, sections that are mappings).
    """
    file = Path(path)
    where = str(path)
    documents = _parse(read_config_text(where, limits.max_bytes), where, limits)
    if len(documents) not in (1, 2):
        raise ConfigError(
            f"a configuration must have 1 or 2 YAML documents (header, then Task sections), not {len(documents)}",
            path=where,
        )
    header_doc = documents[0]
    header = header_doc.data
    if not isinstance(header, dict):
        raise ConfigError(
            "the header (first document) must be a mapping",
            path=where,
            line=header_doc.start_line,
        )
    if "work_dir" not in header:
        raise ConfigError("work_dir is required in the header", path=where, line=header_doc.start_line)
    lines = {f"{HEADER}.{key}": line for key, line in header_doc.lines.items()}
    sections: Dict[str, Any] = {}
    if len(documents) == 2:
        sections = _sections(documents[1], where)
        lines.update(documents[1].lines)
    return LoadedConfig(file, header, sections, lines, dict(os.environ if env is None else env), limits)


def _parse(text: str, where: str, limits: ConfigLimits) -> List[YamlDocument]:
    return parsed(("config", text, limits), lambda: _kept_or_parsed(text, where, limits))


_PARSER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "yaml_lines.py")
"""The module whose code makes a config's documents (their lines among them): part of a kept parse's key."""


def _kept_or_parsed(text: str, where: str, limits: ConfigLimits) -> List[YamlDocument]:
    """The documents of ``text``: from the parse cache when this exact text was parsed before, else PyYAML's."""
    detail = f"{limits!r}|{parse_cache.file_stamps(_PARSER)}"
    kept = parse_cache.load("config", text, detail)
    if isinstance(kept, list) and all(isinstance(d, list) and len(d) == 3 for d in kept):
        return [YamlDocument(data, dict(lines), int(start)) for data, lines, start in kept]
    documents = _parse_with_pyyaml(text, where, limits)
    parse_cache.store("config", text, [[d.data, d.lines, d.start_line] for d in documents], detail)
    return documents


def _parse_with_pyyaml(text: str, where: str, limits: ConfigLimits) -> List[YamlDocument]:
    import yaml  # here: a config read from the parse cache never needs it (~10 ms)

    from lute_kernel.config.yaml_lines import DocumentShapeError, RecursiveAliasError, parse_documents, short_tags

    try:
        return parse_documents(text, limits)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = short_tags(exc.problem or exc.context or "malformed YAML")
        raise ConfigError(
            f"the file is not valid YAML: {problem}",
            path=where,
            line=mark.line + 1 if mark is not None else None,
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        raise ConfigError(
            f"the file is not valid YAML: {exc.reason} (character #x{exc.character:04x})"
            if isinstance(exc.character, int)
            else f"the file is not valid YAML: {exc.reason}",
            path=where,
            line=line,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the file is not valid YAML: {exc}", path=where) from None
    except RecursiveAliasError as exc:
        raise ConfigError(f"the file is not a plain tree: {exc.message}", path=where) from None
    except DocumentShapeError as exc:
        raise ConfigError(exc.message, path=where, line=exc.line) from None
    except RecursionError:
        # Only the pure-Python parser (no libyaml) composes recursively; libyaml stops at depth 1000.
        raise ConfigError(f"values are nested more than {limits.max_depth} levels deep", path=where) from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError) as exc:
        # A constructor failing outside construct_object (merge keys, ordered maps): no line known.
        raise ConfigError(f"the file is not valid YAML: {type(exc).__name__}: {exc}", path=where) from None


def _sections(document: YamlDocument, where: str) -> Dict[str, Any]:
    if document.data is None:
        return {}
    if not isinstance(document.data, dict):
        raise ConfigError(
            "the second document must map each Task name to its section",
            path=where,
            line=document.start_line,
        )
    sections: Dict[str, Any] = {}
    for name, value in document.data.items():
        line = document.lines.get(str(name))
        if not isinstance(name, str):
            raise ConfigError(
                "a section name must be a string (a Task class name)",
                path=where,
                key=str(name),
                line=line,
            )
        if name == HEADER:
            raise ConfigError(
                f"'{HEADER}' is reserved for the header and cannot name a section",
                path=where,
                key=name,
                line=line,
            )
        if value is not None and not isinstance(value, dict):
            raise ConfigError(
                f"a section must be a mapping of parameters, not {type(value).__name__}",
                path=where,
                key=name,
                line=line,
            )
        sections[name] = {} if value is None else value
    return sections


__all__ = ["DEFAULT_TASK_TIMEOUT", "LoadedConfig", "load_config"]
