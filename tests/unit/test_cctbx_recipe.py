"""The cctbx image's recipe: what it installs, the stand-ins it copies in, how it is squashed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lute_kernel.images.address import resolve_sources
from lute_kernel.images.build import prepare_images
from lute_kernel.images.paths import image_paths
from lute_kernel.images.recipes import load_recipes
from lute_kernel.images.render import files_sources
from lute_kernel.sites import load_site

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"


@pytest.fixture(scope="module")
def definition(tmp_path_factory: pytest.TempPathFactory) -> str:
    site = load_site("local")
    site = site.model_copy(update={"images": site.images.model_copy(update={"trust_host_ca": False})})
    tmp = tmp_path_factory.mktemp("images")
    paths = image_paths(site, images_dir=tmp, cache_dir=tmp)
    book = load_recipes(RECIPES)
    return prepare_images(book.build_order(["cctbx"]), site, paths)["cctbx"].definition


def test_built_on_base_with_a_fast_squashfs_level() -> None:
    recipe = load_recipes(RECIPES).get("cctbx")
    assert recipe.parent == "base" and recipe.meta.sites == []  # built here and at every site
    assert recipe.meta.mksquashfs_args == ["-Xcompression-level", "3"]


def test_debians_dials_and_cctbx_with_the_workers_deps_in_one_python(definition: str) -> None:
    assert "    lute_apt_install python3-dials python3-cctbx dials mpich python3-pip\n" in definition
    assert '/usr/bin/python3 -m pip install --break-system-packages "pydantic>=2.5,<3" "pyzmq>=25" "mpi4py>=3.1"' in (
        definition
    )
    assert "    rm -rf /opt/lute\n" in definition  # base's numpy-2 venv cannot load cctbx's extensions
    assert "export PATH=/usr/local/bin:/usr/bin:/bin" in definition
    assert 'test "$(command -v python3)" = /usr/bin/python3' in definition


def test_the_stand_ins_are_copied_from_the_recipes_folder(definition: str) -> None:
    sources = files_sources(definition)
    assert sources == [
        "cctbx/xfel_mono_sim_ext.py",
        "cctbx/sx_merging_ext.py",
        "cctbx/hopper.py",
        "cctbx/fix_cbf_writer.py",
        "cctbx/check_image.py",
    ]
    for path in resolve_sources(sources, RECIPES, "cctbx.def.j2"):
        ast.parse(path.read_text())  # each one is Python that parses
    assert "printf '#!/bin/sh\\nexec /usr/bin/python3 -m xfel.merging.command_line.merge \"$@\"\\n'" in definition
    assert "python3 /opt/lute-cctbx/check_image.py" in definition  # %test runs them


def test_the_cbf_fix_is_checked_and_exact(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("fix_cbf_writer", RECIPES / "cctbx" / "fix_cbf_writer.py")
    assert spec is not None and spec.loader is not None
    fix = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fix)
    writer = tmp_path / "cbf_writer.py"
    writer.write_text(
        "x(\n                    elsigned,\n                    elements,\n                    byteorder,\n)\n"
    )
    fix.main(str(writer))
    assert "byteorder.encode(),\n" in writer.read_text()
    with pytest.raises(SystemExit, match="review this fix"):
        fix.main(str(writer))  # already fixed (or changed upstream): the build stops
