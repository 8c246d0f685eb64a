"""Every Python package of the checkout is in pyproject's package list (a plain ``pip install .`` ships it).

Why: setuptools installs only the packages named; a new subpackage left out works in an editable
checkout and fails as ``ModuleNotFoundError`` once installed (it happened to ``lute_kernel.warm``).
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9/3.10
    import tomli as tomllib

from conftest import REPO


def test_every_package_directory_is_listed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert config.get("package-dir") == {"": "."}, "the root is the one package dir (see pyproject's comment)"
    assert (REPO / "lute_kernel_tasks").resolve() == (REPO / "tasks").resolve(), "lute_kernel_tasks links to tasks/"
    found = set()
    for root in ("lute_kernel", "flows", "lute_kernel_tasks"):  # tasks/ ships through its link
        for init in (REPO / root).rglob("__init__.py"):
            if "__pycache__" in init.parts or "data" in init.relative_to(REPO).parts:
                continue
            found.add(".".join(init.parent.relative_to(REPO).parts))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
