"""A validated site profile kept on disk by its text, so a run does not parse and validate the same profile again.

Why: the site profile is read by every command, and validating it means building the pydantic
schemas of its six settings models (~10 ms at start-up here) besides parsing its YAML. The
models are declared with ``defer_build``, so nothing is built until something validates; a
profile whose exact text (and name) was validated before is rebuilt from what that validation
gave — every value, and which fields the file set, model by model — with ``model_construct``,
which builds no schema. The entry lives in ``lute_kernel.parse_cache`` (keyed by the text, the
name, the kernel version and the size and mtime of the modules declaring the models, so an edited
model is a new entry); only values JSON gives back equal are kept. A miss validates as always.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional, Type, TypeVar

from pydantic import BaseModel

from lute_kernel import parse_cache

M = TypeVar("M", bound=BaseModel)

KIND = "site-profile"
_FORMAT = 1

__all__ = ["keep_profile", "kept_profile"]


def _nested(cls: Type[BaseModel]) -> Dict[str, Type[BaseModel]]:
    """The fields of ``cls`` that are themselves models, with their classes."""
    out = {}
    for name, field in cls.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[name] = annotation
    return out


def _modules(cls: Type[BaseModel]) -> list[str]:
    files = {getattr(sys.modules.get(cls.__module__), "__file__", None) or ""}
    for nested in _nested(cls).values():
        files.update(_modules(nested))
    return sorted(files)


def _detail(cls: Type[BaseModel], name: str) -> str:
    return f"{_FORMAT}|{name}|{cls.__module__}.{cls.__qualname__}|{parse_cache.file_stamps(*_modules(cls))}"


def _dump(model: BaseModel) -> Dict[str, Any]:
    nested = _nested(type(model))
    return {
        "values": {name: getattr(model, name) for name in type(model).model_fields if name not in nested},
        "set": sorted(model.model_fields_set),
        "models": {name: _dump(getattr(model, name)) for name in nested},
    }


def _build(cls: Type[M], kept: Any) -> M:
    values = dict(kept["values"])
    nested = _nested(cls)
    if set(values) | set(kept["models"]) != set(cls.model_fields) or set(kept["models"]) != set(nested):
        raise ValueError("kept for other fields")
    for name, sub in kept["models"].items():
        values[name] = _build(nested[name], sub)
    return cls.model_construct(_fields_set=set(kept["set"]), **values)


def kept_profile(cls: Type[M], text: str, name: str) -> Optional[M]:
    """Return the profile ``text`` (named ``name``) as validated before, rebuilt without validating; None: a miss."""
    kept = parse_cache.load(KIND, text, _detail(cls, name))
    if kept is None:
        return None
    try:
        return _build(cls, kept)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def keep_profile(profile: BaseModel, text: str, name: str) -> None:
    """Keep what validating ``text`` (named ``name``) gave, for the next command."""
    parse_cache.store(KIND, text, _dump(profile), _detail(type(profile), name))
