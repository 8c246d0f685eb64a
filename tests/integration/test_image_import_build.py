"""A Dockerfile imported with `lute-kernel images import` builds for real from our base image.

A tiny tool image (FROM debian, one apt package, an ENV, a LABEL, a copied file, a CMD): imported
by the CLI into a copy of the shipped recipes, built with Apptainer on base (linked from the shared
cache when an earlier run built it), then run: the package, the file, the environment (base's too:
the worker's Python still comes first) and the labels are there. Marked ``apptainer``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Dict

import pytest
from conftest import REPO, run_cli

from lute_kernel.images.build import build_images
from lute_kernel.images.paths import image_paths
from lute_kernel.sites import load_site

pytestmark = [pytest.mark.integration, pytest.mark.apptainer, pytest.mark.timeout(1800)]

TINY = """\
FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="tiny" org.opencontainers.image.version="1.0"
ENV TINY_GREETING="hello from tiny"
RUN apt-get update && \\
    apt-get install -y --no-install-recommends jq && \\
    rm -rf /var/lib/apt/lists/*
COPY greeting.txt /opt/tiny/greeting.txt
CMD ["jq", "--version"]
"""


def run_in(sif: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apptainer", "exec", "--containall", "--cleanenv", str(sif), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_imported_dockerfile_builds_and_runs(tmp_path: Path, cli_env: Dict[str, str]) -> None:
    context = tmp_path / "tiny"
    context.mkdir()
    (context / "Dockerfile").write_text(TINY)
    (context / "greeting.txt").write_text("tiny tool\n")
    recipes = Path(shutil.copytree(REPO / "recipes", tmp_path / "recipes"))
    env = {**cli_env, "LUTE_RECIPES_DIR": str(recipes), "LUTE_IMAGES_DIR": str(tmp_path / "images")}
    imported = run_cli("images", "import", str(context / "Dockerfile"), "tiny", "--parent", "base", env=env)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert f"images: wrote {recipes / 'tiny.def.j2'}" in imported.stdout

    site = load_site("local")
    paths = image_paths(site, recipes_dir=recipes, images_dir=tmp_path / "images")
    outcomes = {o.name: o for o in build_images(["tiny"], site, paths=paths)}
    assert [*outcomes] == ["base", "tiny"] and outcomes["tiny"].action == "built"
    sif = Path(outcomes["tiny"].record.sif)
    try:
        check_the_image(sif)
    finally:  # its address holds this test's temporary path (a %files source): no later run reuses it
        for leftover in sif.parent.glob(f"{sif.name.removesuffix('.sif')}.*"):
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()


def check_the_image(sif: Path) -> None:
    done = run_in(
        sif, "sh", "-c", 'jq --version && cat /opt/tiny/greeting.txt && echo "$TINY_GREETING" && command -v python3'
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == ["tiny tool", "hello from tiny", "/opt/lute/bin/python3"]
    assert done.stdout.startswith("jq-")
    labels = subprocess.run(["apptainer", "inspect", "--labels", str(sif)], capture_output=True, text=True)
    assert "org.opencontainers.image.title: tiny" in labels.stdout and "org.lute-kernel.parent: base" in labels.stdout
    ran = subprocess.run(["apptainer", "run", "--containall", str(sif)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and ran.stdout.startswith("jq-"), ran.stderr
