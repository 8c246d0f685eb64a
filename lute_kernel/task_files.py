"""The files a Task needs written before it starts, without the template machinery for Tasks that have none.

Owns asking ``lute_kernel.templates.rendered_files`` only when the parameters could have files
(a ``lute_template_cfg`` or an ``extra_files()``): the answer is the same, and the runs of most
Tasks do not import the templates module (its pydantic model, jinja2's loader when used).
"""

from __future__ import annotations

from typing import Any, List


def task_files(params: Any) -> List[Any]:
    """Return ``rendered_files(params)``: the files to write before the Task starts (none for most Tasks)."""
    if getattr(params, "lute_template_cfg", None) is None and not callable(getattr(params, "extra_files", None)):
        return []
    from lute_kernel.templates import rendered_files

    return list(rendered_files(params))


def write_task_files(params: Any) -> None:
    """Write ``task_files(params)``, each atomically (``lute_kernel.templates.write_rendered``)."""
    files = task_files(params)
    if files:
        from lute_kernel.templates import write_rendered

        write_rendered(files)
