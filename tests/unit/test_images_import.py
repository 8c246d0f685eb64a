"""`lute-kernel images import`: a published Dockerfile becomes a recipe to review (spython's parser and writer).

A CrystFEL-like Dockerfile, as tools publish them (an ARG before FROM, a named stage, continued
LABEL/ENV/RUN lines with a comment inside, WORKDIR, COPY of a context file, ADD of a URL and of a
local archive with --chown, USER/EXPOSE/HEALTHCHECK, ENTRYPOINT + CMD), is converted into a copy of
the shipped recipes folder; the recipe renders and passes the same checks as every recipe, and its
%files sources resolve. What cannot be converted faithfully is refused, naming it.
"""

from __future__ import annotations

import shutil
import tarfile
import textwrap
from pathlib import Path

import pytest

from lute_kernel.errors import InputError
from lute_kernel.images.build import prepare_images
from lute_kernel.images.dockerfile import read_dockerfile
from lute_kernel.images.importing import import_dockerfile
from lute_kernel.images.paths import image_paths
from lute_kernel.images.recipes import load_recipes
from lute_kernel.sites import load_site

REPO = Path(__file__).resolve().parents[2]

CRYSTFEL_LIKE = """\
# syntax=docker/dockerfile:1
# A CrystFEL-like image, as tools publish them.
ARG CRYSTFEL_VERSION=0.11.1
FROM debian:bookworm-slim AS build
LABEL maintainer="Some One <one@example.org>" \\
      org.opencontainers.image.title="crystfel" version="${CRYSTFEL_VERSION}"
ENV DEBIAN_FRONTEND=noninteractive \\
    PATH="/opt/crystfel/bin:$PATH"
ENV LANG C.UTF-8
RUN apt-get update && \\
    # build tools
    apt-get install -y --no-install-recommends build-essential meson ninja-build \\
        libhdf5-dev libgsl-dev && \\
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY geometry/jungfrau.geom /opt/crystfel/share/
ADD https://www.desy.de/~twhite/crystfel/crystfel-0.11.1.tar.gz /src/
ADD --chown=1000:1000 extra.tar.gz /opt/extra
RUN echo '{{ not jinja }}' > /opt/marker
USER crystfel
EXPOSE 8080
HEALTHCHECK CMD indexamajig --version
ENTRYPOINT ["indexamajig"]
CMD ["--help"]
"""


@pytest.fixture
def context(tmp_path: Path) -> Path:
    folder = tmp_path / "ctx"
    (folder / "geometry").mkdir(parents=True)
    (folder / "geometry" / "jungfrau.geom").write_text("p0/min_fs = 0\n")
    with tarfile.open(folder / "extra.tar.gz", "w:gz") as archive:
        archive.add(folder / "geometry", arcname="geometry")
    (folder / "Dockerfile").write_text(CRYSTFEL_LIKE)
    return folder


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    return Path(shutil.copytree(REPO / "recipes", tmp_path / "recipes"))


def test_each_instruction_lands_in_its_section() -> None:
    recipe = read_dockerfile(CRYSTFEL_LIKE)
    assert recipe.base == "debian:bookworm-slim"
    assert recipe.files == [
        ("geometry/jungfrau.geom", "/opt/crystfel/share/"),
        ("extra.tar.gz", "/tmp/lute-import/extra.tar.gz"),
    ]
    assert recipe.post == [
        "lute_apt_install curl",
        "# syntax=docker/dockerfile:1",
        "# A CrystFEL-like image, as tools publish them.",
        "export CRYSTFEL_VERSION=0.11.1",
        "export DEBIAN_FRONTEND=noninteractive",
        'export PATH="/opt/crystfel/bin:$PATH"',
        "export LANG=C.UTF-8",
        "apt-get update && \\",
        "apt-get install -y --no-install-recommends build-essential meson ninja-build \\",
        "libhdf5-dev libgsl-dev && \\",
        "rm -rf /var/lib/apt/lists/*",
        "mkdir -p /src",
        "cd /src",
        "mkdir -p /src",
        "curl -fsSL --retry 3 -o /src/crystfel-0.11.1.tar.gz https://www.desy.de/~twhite/crystfel/crystfel-0.11.1.tar.gz",
        "mkdir -p /opt/extra",
        "tar -xf /tmp/lute-import/extra.tar.gz -C /opt/extra",
        "rm -f /tmp/lute-import/extra.tar.gz",
        "echo '{{ not jinja }}' > /opt/marker",
    ]  # the comment inside the continued RUN is gone: in sh it would end the command
    assert recipe.environment == [
        "export DEBIAN_FRONTEND=noninteractive",
        'export PATH="/opt/crystfel/bin:$PATH"',
        "export LANG=C.UTF-8",
    ]
    assert recipe.labels == [
        ("maintainer", "Some One <one@example.org>"),
        ("org.opencontainers.image.title", "crystfel"),
        ("version", "0.11.1"),
    ]
    assert recipe.runscript == 'cd /src && exec indexamajig --help "$@"'
    assert [note.split(":")[0] for note in recipe.notes] == [
        "ADD https", "ADD --chown=1000", "USER crystfel", "EXPOSE 8080", "HEALTHCHECK CMD indexamajig --version",
    ]  # fmt: skip


def test_the_imported_recipe_renders_passes_the_checks_and_its_sources_resolve(context: Path, recipes: Path) -> None:
    site = load_site("local")
    imported = import_dockerfile(context / "Dockerfile", "crystfel-like", parent="base", recipes_dir=recipes, site=site)
    assert imported.path == recipes / "crystfel-like.def.j2"
    assert imported.copied == [
        recipes / "crystfel-like" / "geometry" / "jungfrau.geom",
        recipes / "crystfel-like" / "extra.tar.gz",
    ]
    book = load_recipes(recipes)
    recipe = book.get("crystfel-like")
    assert (recipe.parent, recipe.meta.sites) == ("base", [])
    paths = image_paths(site, recipes_dir=recipes, images_dir=recipes.parent / "images", cache_dir=recipes.parent / "c")
    image = prepare_images(book.build_order(["crystfel-like"]), site, paths)["crystfel-like"]
    text = image.definition
    assert text.startswith('# lute-kernel image "crystfel-like"') and "\nBootstrap: localimage\n" in text
    assert "# Dockerfile: FROM debian:bookworm-slim (replaced by the parent image base)" in text
    assert "    echo '{{ not jinja }}' > /opt/marker\n" in text  # kept verbatim, not rendered
    assert "    export PATH=/opt/lute/bin:$PATH LC_ALL=C.UTF-8 PYTHONDONTWRITEBYTECODE=1\n" in text  # base's, first
    assert "    org.lute-kernel.image crystfel-like\n    org.lute-kernel.description crystfel-like: converted" in text
    assert "    version 0.11.1\n" in text
    assert image.sources == [
        recipes / "crystfel-like" / "geometry" / "jungfrau.geom",
        recipes / "crystfel-like" / "extra.tar.gz",
    ]
    assert "USER crystfel: dropped" in recipe.path.read_text()  # the review notes travel with the recipe


def test_an_existing_recipe_is_kept_without_force(context: Path, recipes: Path) -> None:
    site = load_site("local")
    with pytest.raises(InputError, match=r"base.def.j2 exists; --force replaces it"):
        import_dockerfile(context / "Dockerfile", "base", parent="smoke", recipes_dir=recipes, site=site)
    import_dockerfile(context / "Dockerfile", "tool", parent="base", recipes_dir=recipes, site=site)
    import_dockerfile(context / "Dockerfile", "tool", parent="base", recipes_dir=recipes, site=site, force=True)


@pytest.mark.parametrize(
    ("dockerfile", "problem"),
    [
        ("FROM debian AS b\nRUN true\nFROM debian\nCOPY --from=b /x /x\n", "a second FROM (debian): multi-stage"),
        ("FROM debian\nARG VERSION\n", "ARG VERSION has no default"),
        ("FROM debian\nRUN <<EOF\necho hi\nEOF\n", "a heredoc (RUN <<EOF): write its lines as RUN lines"),
        ("RUN true\n", "no FROM line"),
    ],
)
def test_what_cannot_be_converted_faithfully_is_refused(
    tmp_path: Path, recipes: Path, dockerfile: str, problem: str
) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile)
    with pytest.raises(InputError) as info:
        import_dockerfile(path, "tool", parent="base", recipes_dir=recipes, site=load_site("local"))
    assert f"{path}: cannot convert: " in str(info.value) and problem in str(info.value)
    assert not (recipes / "tool.def.j2").exists()


@pytest.mark.parametrize(
    ("name", "parent", "problem"),
    [("Tool", "base", "lowercase letters"), ("../x", "base", "lowercase"), ("base2", "nope", "unknown image 'nope'")],
)
def test_bad_names_and_parents(tmp_path: Path, recipes: Path, name: str, parent: str, problem: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("FROM debian\nRUN true\n")
    with pytest.raises(InputError, match=problem):
        import_dockerfile(path, name, parent=parent, recipes_dir=recipes, site=load_site("local"))


def test_a_source_outside_the_context_is_refused(tmp_path: Path, recipes: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("FROM debian\nCOPY ../secret /x\n")
    with pytest.raises(InputError, match="outside the build context"):
        import_dockerfile(path, "tool", parent="base", recipes_dir=recipes, site=load_site("local"))


def test_a_missing_context_file_is_a_review_note(tmp_path: Path, recipes: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(textwrap.dedent("FROM debian\nCOPY data/ /opt/data\nCOPY *.txt /opt/\n"))
    imported = import_dockerfile(path, "tool", parent="base", recipes_dir=recipes, site=load_site("local"))
    assert imported.copied == []
    assert imported.notes == [
        f"COPY data/: not a file or folder of {tmp_path}: put it at {recipes / 'tool' / 'data'}",
        f"COPY *.txt: not a file or folder of {tmp_path}: put it at {recipes / 'tool' / '*.txt'}",
    ]


@pytest.mark.parametrize(
    ("instructions", "runscript"),
    [
        ('CMD ["jq", "--version"]', 'exec jq --version "$@"'),  # no ENTRYPOINT: Docker runs CMD itself
        ("CMD jq --version", 'exec jq --version "$@"'),
        ('ENTRYPOINT ["indexamajig"]', 'exec indexamajig "$@"'),
        ('WORKDIR /w\nENTRYPOINT ["tool"]\nCMD ["-h"]', 'cd /w && exec tool -h "$@"'),
    ],
)
def test_cmd_and_entrypoint_make_the_runscript(instructions: str, runscript: str) -> None:
    assert read_dockerfile(f"FROM debian\n{instructions}\n").runscript == runscript
