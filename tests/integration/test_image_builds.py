"""Real image builds with Apptainer: smoke on the cached base, skip, a broken recipe, a half-way failure.

Marked ``apptainer`` (CI runs it for real). The session fixture builds base once per machine (into
the shared SIF cache, minutes the first time) and smoke (about 20 s, or linked from the cache),
linking them into a temporary images folder so the repository's ``images/`` is left alone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Tuple

import pytest
from conftest import REPO

from lute_kernel.errors import InputError
from lute_kernel.images import find_image
from lute_kernel.images.apptainer_build import ImageBuildError
from lute_kernel.images.build import BuildOutcome, build_images
from lute_kernel.images.manifest import read_manifest, sidecar
from lute_kernel.images.paths import ImagePaths, image_paths
from lute_kernel.sites import SiteProfile, load_site

pytestmark = [pytest.mark.integration, pytest.mark.apptainer, pytest.mark.timeout(1800)]

Built = Tuple[ImagePaths, Dict[str, BuildOutcome]]

HALFWAY = """\
{#- lute-image
description: A test image whose second version fails half way through %post
parent: base
-#}
{% include "fragments/from_parent.j2" %}

%post
    echo VERSION > /etc/halfway
"""
FAILING = '    echo "failing half way"\n    exit 1\n    echo "never here" > /etc/unreached\n'


@pytest.fixture(scope="session")
def site() -> SiteProfile:
    return load_site("local")


@pytest.fixture(scope="session")
def built(site: SiteProfile, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """base and smoke, built (or linked from the shared cache) once per test session."""
    paths = image_paths(site, recipes_dir=REPO / "recipes", images_dir=tmp_path_factory.mktemp("images"))
    outcomes = build_images(["smoke"], site, paths=paths)
    return paths, {o.name: o for o in outcomes}


def apptainer_exec(sif: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apptainer", "exec", "--containall", "--cleanenv", str(sif), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_smoke_runs_the_workers_dependencies(built: Built, site: SiteProfile) -> None:
    paths, outcomes = built
    assert [*outcomes] == ["base", "smoke"]
    image = find_image("smoke", site, images_dir=paths.images_dir)
    assert image.sif == Path(outcomes["smoke"].record.sif) and image.sif.stat().st_size > 10_000_000
    done = apptainer_exec(image.sif, "python3", "-c", "import zmq, pydantic; print(pydantic.VERSION)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2.")
    done = apptainer_exec(image.sif, "cat", "/etc/lute-smoke")
    assert done.stdout == "lute-kernel smoke image (site local)\n"
    labels = subprocess.run(["apptainer", "inspect", "--labels", str(image.sif)], capture_output=True, text=True)
    assert "org.lute-kernel.image: smoke" in labels.stdout and "org.lute-kernel.parent: base" in labels.stdout


def test_the_recorded_sha256_is_the_sifs(built: Built, site: SiteProfile) -> None:
    paths, _ = built
    image = find_image("smoke", site, images_dir=paths.images_dir)
    digest = hashlib.sha256()
    with open(image.sif, "rb") as sif:
        for chunk in iter(lambda: sif.read(1 << 20), b""):
            digest.update(chunk)
    assert image.sha256 == digest.hexdigest()
    record = read_manifest(paths.manifest)["smoke"]
    assert record.apptainer_version.startswith("apptainer version ")
    assert os.readlink(paths.link("smoke")) == record.sif


def test_an_unchanged_rebuild_is_skipped_in_well_under_a_second(built: Built, site: SiteProfile) -> None:
    paths, first = built
    start = time.monotonic()
    again = build_images(["smoke"], site, paths=paths, output=lambda _: None, status=lambda _: None)
    seconds = time.monotonic() - start
    assert [(o.name, o.action) for o in again] == [("base", "skipped"), ("smoke", "skipped")]
    assert seconds < 1.0, f"no-op rebuild took {seconds:.2f} s"
    assert [o.record for o in again] == [first["base"].record, first["smoke"].record]


def test_the_cli_skips_an_unchanged_image(built: Built) -> None:
    paths, _ = built
    env = dict(os.environ, LUTE_IMAGES_DIR=str(paths.images_dir), LUTE_IMAGE_CACHE=str(paths.cache_dir))
    env.pop("LUTE_SITE", None)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "lute_kernel.cli", "images", "build", "smoke"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stdout + done.stderr
    assert "images: base skipped, smoke skipped" in done.stdout
    assert seconds < 3.0, f"`lute-kernel images build smoke` took {seconds:.2f} s when nothing changed"
    listing = subprocess.run(
        [sys.executable, "-m", "lute_kernel.cli", "images", "ls"], capture_output=True, text=True, env=env, cwd=REPO
    )
    rows = {line.split()[1]: line for line in listing.stdout.splitlines() if line.startswith("│")}
    assert "yes" in rows["smoke"] and " no " in rows["smoke"]  # built, not stale
    assert "s3df only" in rows["psana1"] and "s3df only" in rows["crystfel"]


def test_a_recipe_with_a_syntax_error_fails_cleanly(tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "broken.def.j2").write_text(
        "{#- lute-image\ndescription: broken on purpose\n-#}\nBootstrap: debootstrap\n%post\n{% if %}\n    true\n"
    )
    images = tmp_path / "images"
    env = dict(os.environ, LUTE_RECIPES_DIR=str(recipes), LUTE_IMAGES_DIR=str(images))
    env["LUTE_IMAGE_CACHE"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-m", "lute_kernel.cli", "images", "build", "broken"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: {recipes / 'broken.def.j2'}:6: template syntax error in recipe 'broken'")
    assert not images.exists() and not (tmp_path / "cache").exists()  # nothing started


@pytest.fixture
def scratch(built: Built, site: SiteProfile, tmp_path: Path) -> ImagePaths:
    """A recipes folder (base + fragments + halfway) and a cache of its own holding the built base."""
    _, outcomes = built
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    shutil.copy(REPO / "recipes" / "base.def.j2", recipes)
    shutil.copytree(REPO / "recipes" / "fragments", recipes / "fragments")
    cache = tmp_path / "cache"
    cache.mkdir()
    base_sif = Path(outcomes["base"].record.sif)
    for source in (base_sif, sidecar(base_sif)):
        try:
            os.link(source, cache / source.name)  # same inode: same mtime, no copy
        except OSError:
            shutil.copy2(source, cache / source.name)
    return ImagePaths(recipes_dir=recipes, images_dir=tmp_path / "images", cache_dir=cache)


def test_a_build_that_fails_half_way_keeps_the_previous_image(scratch: ImagePaths, site: SiteProfile) -> None:
    def write(version: str, tail: str = "") -> None:
        (scratch.recipes_dir / "halfway.def.j2").write_text(HALFWAY.replace("VERSION", version) + tail)

    write("v1")
    first = {o.name: o for o in build_images(["halfway"], site, paths=scratch)}
    assert (first["base"].action, first["halfway"].action) == ("linked", "built")
    good = first["halfway"].record

    write("v2", FAILING)
    with pytest.raises(ImageBuildError) as info:
        build_images(["halfway"], site, paths=scratch)
    assert "building image 'halfway' failed" in str(info.value)
    assert f"the previous image is kept ({scratch.link('halfway')} -> {good.sif})" in str(info.value)
    log = (scratch.logs_dir / "halfway.log").read_text()
    assert "failing half way" in log
    # No partial image anywhere; the link, the manifest and the SIF are the previous ones.
    left = sorted(p.name for p in scratch.cache_dir.iterdir() if p.name.startswith(("halfway", ".halfway")))
    assert not [name for name in left if ".tmp" in name], left
    assert [name for name in left if ".sif" in name] == [Path(good.sif).name, Path(good.sif).name + ".json"]
    assert os.readlink(scratch.link("halfway")) == good.sif
    assert read_manifest(scratch.manifest)["halfway"] == good
    image = find_image("halfway", site, images_dir=scratch.images_dir, recipes_dir=scratch.recipes_dir)
    assert image.sha256 == good.sha256
    assert apptainer_exec(image.sif, "cat", "/etc/halfway").stdout == "v1\n"


def test_a_site_only_image_fails_fast_here(site: SiteProfile, tmp_path: Path) -> None:
    paths = image_paths(site, images_dir=tmp_path / "images", cache_dir=tmp_path / "cache")
    start = time.monotonic()
    with pytest.raises(InputError, match=r"image 'psana1' is built only at site s3df"):
        build_images(["psana1"], site, paths=paths)
    assert time.monotonic() - start < 2.0
    assert not (tmp_path / "cache").exists()
