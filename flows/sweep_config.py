"""The config file of one sweep run: the user's config with that run's values in its Task's section.

Owns the text of a derived config (as upstream's maestro writes ``config_expanded_*.yaml``, but
one file per run, keeping the section's name so the Task reads it unchanged): the header and
every section as written — substitutions still unresolved, so ``{{ $RUN }}`` and
``{{ other_param }}`` resolve as in the original — with the combination's values set in the
swept Task's section. The run's DB row then records this file as its config, so
``lute-kernel rerun`` repeats exactly that combination. Writing is the flow's job, after the
whole flow validated (``<work_dir>/.lute/flows/<flow run>/``); validation uses a temporary folder.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import yaml

from lute_kernel.config import HEADER, LoadedConfig
from lute_kernel.config.yaml_lines import parse_documents
from lute_kernel.flow_record import FLOWS_DIR

__all__ = ["FLOWS_DIR", "derived_config_text", "with_values", "write_derived_config"]


def with_values(config: LoadedConfig, section: str, values: Mapping[str, Any], env: Mapping[str, str]) -> LoadedConfig:
    """Return ``config`` with ``values`` set in ``section`` (raw, before substitution); nothing is written.

    Keys keep the lines of the original file, so messages point into it.
    """
    sections: Dict[str, Any] = copy.deepcopy(dict(config.raw_sections))
    sections[section] = {**dict(sections.get(section) or {}), **dict(values)}
    return LoadedConfig(config.path, copy.deepcopy(config.raw_header), sections, _lines(config.path), dict(env))


def _lines(path: Path) -> Dict[str, int]:
    """The line of every key of a config file, as ``lute_kernel.config.load_config`` records them."""
    documents = parse_documents(path.read_text(encoding="utf-8"))
    lines = {f"{HEADER}.{key}": line for key, line in documents[0].lines.items()}
    if len(documents) > 1:
        lines.update(documents[1].lines)
    return lines


def derived_config_text(config: LoadedConfig, section: str, run: str, values: Tuple[Tuple[str, Any], ...]) -> str:
    """Return the YAML of the derived config of sweep run ``run`` (``SocketTester_2``)."""
    sections: Dict[str, Any] = copy.deepcopy(dict(config.raw_sections))
    sections[section] = {**dict(sections.get(section) or {}), **dict(values)}
    shown = ", ".join(f"{name}={value!r}" for name, value in values)
    head = f"# Derived by `lute-kernel flow` from {config.path.resolve()} for sweep run {run}: {shown}\n"
    body = yaml.safe_dump_all([config.raw_header, sections], sort_keys=False, explicit_start=True, allow_unicode=True)
    return head + body + "...\n"


def write_derived_config(folder: Path, run: str, text: str) -> Path:
    """Write a derived config as ``<folder>/<run>.yaml`` (the folder is made, mode 0700) and return its path."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{run}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
