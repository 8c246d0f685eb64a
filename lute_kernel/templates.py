"""Third-party configuration files rendered from a Task's parameters (upstream LUTE's templates).

Owns upstream's ``TemplateConfig`` (``lute_template_cfg``: template name and output path), the
template context a Task's parameters give, rendering it with jinja2, and the list of files a Task
needs written before it starts (``rendered_files``). Pure except ``write_rendered``, which the
kernel calls on the host just before launch (``explain`` shows the same text and writes nothing).
Must not validate parameters, spawn or touch the DB.

Upstream's rules, kept: a Task's parameters carry ``lute_template_cfg``; the template variables are
the fields of its template-parameter groups (upstream spreads e.g. ``phil_parameters`` into single
variables with ``template_parameter_validator``; here a model names them in ``template_fields``)
and the section's unknown keys (upstream's ``TemplateParameters``); the file is rendered only when
there is at least one variable, so a section without template parameters keeps the user's own file.
Templates live in ``config/templates/`` (``$LUTE_TEMPLATES_DIR`` overrides; upstream:
``$LUTE_PATH/config/templates``), or ``template_name`` is an absolute path. Unlike upstream, an
undefined variable is an error (a typo must not render an empty value); ``{% if x is defined %}``
still works.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field

from lute_kernel.errors import InputError

TEMPLATE_FIELDS_ATTR = "template_fields"
"""Class attribute of a parameters model: the names of its fields that are template-parameter groups."""


class TemplateError(InputError):
    """A template is missing or does not render with the Task's parameters."""


class TemplateConfig(BaseModel):
    """Where a third-party configuration file comes from and goes to (upstream's ``lute_template_cfg``)."""

    model_config = ConfigDict(extra="forbid")

    template_name: str = Field(..., description="Template file in config/templates/ (or an absolute path).")
    output_path: str = Field("", description="Full path of the rendered file (default: set by the Task).")


@dataclass(frozen=True)
class RenderedFile:
    """One file a Task needs before it starts: its full path and text."""

    path: str
    text: str


def templates_dir() -> Path:
    """Return the templates folder: ``$LUTE_TEMPLATES_DIR`` or the kernel's ``config/templates``.

    Found like the site profiles: package data (``lute_kernel/data/templates``, a link to the
    checkout's ``config/templates`` or a copy in a wheel).
    """
    from lute_kernel.resources import packaged_dir

    override = os.environ.get("LUTE_TEMPLATES_DIR")
    return Path(override) if override else packaged_dir("templates")


def template_context(params: BaseModel) -> Dict[str, Any]:
    """Return the template variables of ``params``: its template-parameter groups and unknown keys.

    Each field named in the model's ``template_fields`` (a model or a mapping; None adds nothing)
    contributes its entries, the group's own unknown keys included; then the section's unknown
    keys (models with ``extra="allow"``) are added, and win on a clash, as upstream's would.
    """
    context: Dict[str, Any] = {}
    for name in getattr(type(params), TEMPLATE_FIELDS_ATTR, ()):
        group = getattr(params, name, None)
        if isinstance(group, BaseModel):
            context.update(_model_values(group))
        elif isinstance(group, Mapping):
            context.update(group)
    context.update(params.model_extra or {})
    return context


def _model_values(model: BaseModel) -> Dict[str, Any]:
    values = {name: getattr(model, name) for name in type(model).model_fields}
    values.update(model.model_extra or {})
    return values


def render_template(
    template_name: str,
    context: Mapping[str, Any],
    directory: Optional[Path] = None,
    *,
    filters: Optional[Mapping[str, Callable[..., Any]]] = None,
    trim_blocks: bool = False,
) -> str:
    """Render one template with ``context``.

    Args:
        template_name: A file of ``directory`` (default: :func:`templates_dir`), or an absolute path.
        context: The template variables.
        directory: Where relative template names are looked up.
        filters: Extra jinja2 filters (e.g. one writing values as Python literals).
        trim_blocks: Drop the newline after a block tag and the indentation before it (templates of
            code, such as smalldata's producer configuration).

    Raises:
        TemplateError: The template does not exist, does not parse, or uses an undefined variable.
    """
    path = Path(template_name)
    folder = path.parent if path.is_absolute() else (directory or templates_dir())
    import jinja2  # only Tasks with templates pay for it (~30 ms)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=trim_blocks,
        lstrip_blocks=trim_blocks,
    )
    env.filters.update(filters or {})
    try:
        return env.get_template(path.name if path.is_absolute() else template_name).render(dict(context))
    except jinja2.TemplateNotFound:
        raise TemplateError(f"template {template_name!r} not found in {folder}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {exc.filename or template_name}:{exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {template_name!r}: {exc.message}") from None


def rendered_files(params: BaseModel, directory: Optional[Path] = None) -> List[RenderedFile]:
    """Return the files ``params`` needs written before its Task starts (none for most Tasks).

    The rendered ``lute_template_cfg`` template when there is at least one template variable,
    then whatever the model's own ``extra_files()`` returns (e.g. a data-spec file).

    Raises:
        TemplateError: The template cannot be rendered.
    """
    files: List[RenderedFile] = []
    config = getattr(params, "lute_template_cfg", None)
    if isinstance(config, TemplateConfig):
        context = template_context(params)
        if context:
            if not config.output_path:
                raise TemplateError(f"lute_template_cfg for {config.template_name!r} has no output_path")
            files.append(RenderedFile(config.output_path, render_template(config.template_name, context, directory)))
    extra = getattr(params, "extra_files", None)
    if callable(extra):
        files.extend(extra())
    return files


def write_rendered(files: List[RenderedFile]) -> None:
    """Write each file (parent folders made), replacing it atomically so a reader never sees half."""
    for rendered in files:
        path = Path(rendered.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(rendered.text)
        os.replace(tmp, path)
