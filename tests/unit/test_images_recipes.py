"""Recipes: the registry (metadata as data), rendering, definition checks and content addresses."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
from images_fakes import LEAF, ROOT, make_paths, make_site, write_recipes

from lute_kernel.errors import InputError
from lute_kernel.images import known_images
from lute_kernel.images.address import content_address, file_sha256, tree_sha256
from lute_kernel.images.apptainer_build import build_argv
from lute_kernel.images.build import prepare_images
from lute_kernel.images.paths import image_paths
from lute_kernel.images.recipes import check_site, load_recipes, read_meta
from lute_kernel.images.render import check_definition, files_sources, host_ca_files
from lute_kernel.sites import load_site

REPO = Path(__file__).resolve().parents[2]
REPO_RECIPES = REPO / "recipes"


# --- the repository's recipes --------------------------------------------------------------------


def test_the_repo_ships_these_images() -> None:
    assert known_images(REPO_RECIPES) == ["base", "ccp4", "cctbx", "crystfel", "psana1", "psana2", "smoke"]
    book = load_recipes(REPO_RECIPES)
    assert {name: r.parent for name, r in book.recipes.items()} == {
        "base": None,
        "cctbx": "base",
        "ccp4": "base",
        "crystfel": "base",
        "psana1": None,
        "psana2": "base",
        "smoke": "base",
    }
    assert {name: r.meta.sites for name, r in book.recipes.items() if r.meta.sites} == {
        "ccp4": ["s3df"],
        "crystfel": ["s3df"],
        "psana1": ["s3df"],
    }
    assert book.buildable_at("local") == ["base", "cctbx", "psana2", "smoke"]
    assert book.buildable_at("s3df") == ["base", "ccp4", "cctbx", "crystfel", "psana1", "psana2", "smoke"]


def test_known_images_follows_lute_recipes_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUTE_RECIPES_DIR", str(write_recipes(tmp_path / "r")))
    assert known_images() == ["far", "leaf", "root"]


@pytest.mark.parametrize("site_name", ["local", "s3df"])
def test_every_repo_recipe_renders_into_a_valid_definition(site_name: str, tmp_path: Path) -> None:
    site = load_site(site_name)
    site = site.model_copy(update={"images": site.images.model_copy(update={"trust_host_ca": False})})
    paths = image_paths(site, images_dir=tmp_path / "images", cache_dir=tmp_path / "cache")
    book = load_recipes(paths.recipes_dir)
    prepared = prepare_images(book.build_order(sorted(book.recipes)), site, paths)
    assert sorted(prepared) == ["base", "ccp4", "cctbx", "crystfel", "psana1", "psana2", "smoke"]
    for image in prepared.values():
        text = image.definition
        assert text.startswith(f'# lute-kernel image "{image.name}": ')
        assert f"org.lute-kernel.image {image.name}" in text
        assert "{{" not in text and "{%" not in text and "lute-image" not in text
        if image.recipe.parent:
            parent = prepared[image.recipe.parent]
            assert f"Bootstrap: localimage\nFrom: {parent.cached_sif}\n" in text
            assert image.parent_address == parent.address


def test_base_bootstrap_is_the_sites_choice(tmp_path: Path) -> None:
    def base_text(site_name: str) -> str:
        site = load_site(site_name)
        site = site.model_copy(update={"images": site.images.model_copy(update={"trust_host_ca": False})})
        paths = image_paths(site, images_dir=tmp_path, cache_dir=tmp_path)
        return prepare_images([load_recipes(REPO_RECIPES).get("base")], site, paths)["base"].definition

    local, s3df = base_text("local"), base_text("s3df")
    assert "Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://deb.debian.org/debian\n" in local
    assert "Include: python3 python3-venv ca-certificates\n" in local
    assert "lute_apt_install python3" not in local
    assert "Bootstrap: docker\nFrom: debian:bookworm-slim\n" in s3df
    assert "    lute_apt_install python3 python3-venv ca-certificates\n" in s3df
    for text in (local, s3df):
        assert "%files" not in text and "update-ca-certificates" not in text
        assert '/opt/lute/bin/pip install "pydantic>=2.5,<3" "pyzmq>=25" "numpy>=1.22"' in text
        assert "export PATH=/opt/lute/bin:$PATH" in text


def test_trusting_the_host_ca_copies_the_certificates_in(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "b.crt").write_text("B")
    (certs / "a.crt").write_text("A")
    (certs / "notes.txt").write_text("not a certificate")
    site = make_site(trust_host_ca=True, host_ca_files=[str(certs / "*.crt")])
    assert host_ca_files(site.images) == [str(certs / "a.crt"), str(certs / "b.crt")]
    assert host_ca_files(make_site(host_ca_files=[str(certs / "*.crt")]).images) == []  # trust_host_ca false
    paths = image_paths(site, images_dir=tmp_path, cache_dir=tmp_path)
    base = prepare_images([load_recipes(REPO_RECIPES).get("base")], site, paths)["base"]
    assert (
        f"%files\n    {certs}/a.crt /usr/local/share/ca-certificates/lute-host/a.crt\n"
        f"    {certs}/b.crt /usr/local/share/ca-certificates/lute-host/b.crt\n"
    ) in base.definition
    assert "    update-ca-certificates\n" in base.definition
    assert "export PIP_CERT=/etc/ssl/certs/ca-certificates.crt" in base.definition
    assert base.sources == [certs / "a.crt", certs / "b.crt"]
    # The certificates' bytes are part of the address.
    before = base.address
    (certs / "a.crt").write_text("A, renewed")
    again = prepare_images([load_recipes(REPO_RECIPES).get("base")], site, paths)["base"]
    assert again.address != before


def test_pip_index_options_reach_every_post(tmp_path: Path) -> None:
    site = make_site(pip_index_url="https://pypi.example/simple", pip_extra_index_urls=["https://a/s", "https://b/s"])
    paths = image_paths(site, images_dir=tmp_path, cache_dir=tmp_path)
    book = load_recipes(REPO_RECIPES)
    for image in prepare_images(book.build_order(["psana2"]), site, paths).values():
        assert '    export PIP_INDEX_URL="https://pypi.example/simple"\n' in image.definition
        assert '    export PIP_EXTRA_INDEX_URL="https://a/s https://b/s"\n' in image.definition


def test_site_only_recipes_fail_fast_elsewhere() -> None:
    book = load_recipes(REPO_RECIPES)
    with pytest.raises(InputError) as info:
        check_site(book.build_order(["psana1"]), "local")
    message = str(info.value)
    assert "image 'psana1' is built only at site s3df" in message
    assert "LCLS conda channel" in message and "this is site 'local'" in message
    assert "`lute-kernel images build psana1 --site s3df`" in message
    check_site(book.build_order(["psana1", "crystfel", "ccp4"]), "s3df")  # allowed there


# --- metadata -------------------------------------------------------------------------------------


def test_metadata_is_read_from_the_leading_jinja_comment(tmp_path: Path) -> None:
    write_recipes(tmp_path)
    meta = read_meta(tmp_path / "far.def.j2")
    assert (meta.description, meta.parent, meta.sites) == ("An image only another site builds", "root", ["elsewhere"])
    assert meta.site_note == "its sources are only reachable there"
    assert load_recipes(tmp_path).get("far").restriction() == "elsewhere only"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Bootstrap: scratch\n", ":1: a recipe starts with a metadata block"),
        ("{#- lute-image\n-#}\nBootstrap: scratch\n", "description: Field required"),
        ("{#- lute-image\ndescription: x\nparnet: base\n-#}\n", "parnet: Extra inputs are not permitted"),
        ("{#- lute-image\ndescription: [x\n-#}\n", "the lute-image block is not valid YAML"),
        ("{#- lute-image\n- a list\n-#}\n", "must be a YAML mapping"),
    ],
)
def test_bad_metadata_is_named(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "bad.def.j2").write_text(text)
    with pytest.raises(InputError, match=r"bad\.def\.j2") as info:
        load_recipes(tmp_path)
    assert problem in str(info.value)


def test_a_missing_parent_and_a_cycle_are_errors(tmp_path: Path) -> None:
    write_recipes(tmp_path, {"leaf": LEAF})
    with pytest.raises(InputError, match="parent image 'root' has no recipe"):
        load_recipes(tmp_path)
    cyc = "{#- lute-image\ndescription: x\nparent: %s\n-#}\n"
    write_recipes(tmp_path, {"root": cyc % "leaf"})
    with pytest.raises(InputError, match="parent images form a cycle: leaf -> root -> leaf"):
        load_recipes(tmp_path)


def test_unknown_images_suggest_close_names(tmp_path: Path) -> None:
    book = load_recipes(write_recipes(tmp_path))
    with pytest.raises(InputError) as info:
        book.get("lief")
    assert str(info.value) == (
        f"unknown image 'lief': no recipe {tmp_path / 'lief.def.j2'} (known: far, leaf, root); "
        "did you mean leaf?; add the recipe, then run `just build-image lief`"
    )


def test_build_order_puts_parents_first_once(tmp_path: Path) -> None:
    book = load_recipes(write_recipes(tmp_path))
    assert [r.name for r in book.build_order(["leaf", "far", "root"])] == ["root", "leaf", "far"]
    assert book.buildable_at("local") == ["leaf", "root"]


# --- rendering errors -----------------------------------------------------------------------------


def _prepare(tmp_path: Path, name: str) -> None:
    site = make_site()
    paths = make_paths(tmp_path)
    book = load_recipes(paths.recipes_dir)
    prepare_images(book.build_order([name]), site, paths)


def test_a_template_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    bad = ROOT.replace("%post\n", "%post\n{% if images.trust_host_ca %}\n")
    write_recipes(tmp_path / "recipes", {"root": bad})
    with pytest.raises(InputError) as info:
        _prepare(tmp_path, "root")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'recipes' / 'root.def.j2'}:")
    assert "template syntax error in recipe 'root'" in message and "endif" in message


def test_an_undefined_variable_names_the_recipe_and_line(tmp_path: Path) -> None:
    write_recipes(tmp_path / "recipes", {"root": ROOT.replace("{{ images.debian_release }}", "{{ release }}")})
    with pytest.raises(InputError) as info:
        _prepare(tmp_path, "root")
    assert str(info.value) == f"{tmp_path / 'recipes' / 'root.def.j2'}:5: recipe 'root': 'release' is undefined"


def test_an_undefined_setting_inside_a_fragment_names_the_fragment(tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    write_recipes(recipes, {"root": ROOT.replace("%post\n", '%post\n{% include "fragments/x.j2" %}\n')})
    (recipes / "fragments").mkdir()
    (recipes / "fragments" / "x.j2").write_text("    # a fragment\n    echo {{ images.no_such_option }}\n")
    with pytest.raises(InputError) as info:
        _prepare(tmp_path, "root")
    message = str(info.value)
    assert message.startswith(f"{recipes / 'fragments' / 'x.j2'}:2: recipe 'root': ")
    assert "no_such_option" in message


def test_a_missing_fragment_is_named(tmp_path: Path) -> None:
    write_recipes(tmp_path / "recipes", {"root": ROOT.replace("%post\n", '%post\n{% include "fragments/nope.j2" %}\n')})
    with pytest.raises(InputError, match=r"root.def.j2:9: recipe 'root' includes 'fragments/nope.j2', which does not"):
        _prepare(tmp_path, "root")


def test_parent_sif_is_undefined_without_a_parent(tmp_path: Path) -> None:
    write_recipes(tmp_path / "recipes", {"root": LEAF.replace("parent: root\n", "")})
    with pytest.raises(InputError, match=r"root.def.j2:5: recipe 'root': 'parent_sif' is undefined"):
        _prepare(tmp_path, "root")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("Bootstrap: debootstrap\n%psot\n    true\n", "line 2: unknown section %psot"),
        ("From: debian\nBootstrap: docker\n", "line 1: the header must start with 'Bootstrap:', not 'From'"),
        ("Bootstrap: dokcer\n", "line 1: unknown bootstrap agent 'dokcer'"),
        ("# only a comment\n\n%post\n    true\n", "line 1: no 'Bootstrap:' header"),
        ("Bootstrap: docker\nthis is not a header\n", "line 2: expected a 'Key: value' header line"),
    ],
)
def test_the_rendered_definition_is_checked(tmp_path: Path, body: str, problem: str) -> None:
    recipe = load_recipes(write_recipes(tmp_path, {"x": "{#- lute-image\ndescription: x\n-#}\n" + body})).get("x")
    with pytest.raises(InputError) as info:
        check_definition(body, recipe)
    assert problem in str(info.value) and "recipe 'x'" in str(info.value)


def test_a_good_definition_passes_the_check(tmp_path: Path) -> None:
    recipe = load_recipes(write_recipes(tmp_path)).get("root")
    text = "# header\nBootstrap: docker\nFrom: debian\n\n%post -c /bin/bash\n    true\n%files from build\n    /a /b\n"
    check_definition(text, recipe)


def test_files_sources_reads_only_host_copies() -> None:
    text = textwrap.dedent(
        """\
        Bootstrap: docker
        %files
            /etc/a.crt /x/a.crt
            # a comment
            relative.txt
        %files from stage1
            /built/in/stage /y
        %post
            echo /not/a/file
        """
    )
    assert files_sources(text) == ["/etc/a.crt", "relative.txt"]


def test_a_missing_files_source_fails_before_any_build(tmp_path: Path) -> None:
    write_recipes(tmp_path / "recipes", {"root": ROOT + "\n%files\n    data/missing.txt /opt/x\n"})
    with pytest.raises(InputError, match=r"root.def.j2: %files source 'data/missing.txt' does not exist"):
        _prepare(tmp_path, "root")


# --- content addresses ----------------------------------------------------------------------------


def test_the_address_covers_text_parent_and_file_bytes(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("one")
    base = content_address("def", None, [data])
    assert base == content_address("def", None, [data])
    assert content_address("def2", None, [data]) != base
    assert content_address("def", "p" * 64, [data]) != base
    data.write_text("two")
    assert content_address("def", None, [data]) != base
    assert len(base) == 64 and int(base, 16) >= 0


def test_relative_files_sources_resolve_against_the_recipes_dir(tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    write_recipes(recipes, {"root": ROOT + "\n%files\n    data/* /opt/data/\n"})
    (recipes / "data").mkdir()
    (recipes / "data" / "x.txt").write_text("x")
    paths = make_paths(tmp_path)
    image = prepare_images([load_recipes(recipes).get("root")], make_site(), paths)["root"]
    assert image.sources == [recipes / "data" / "x.txt"]


def test_a_childs_address_does_not_depend_on_where_the_cache_is(tmp_path: Path) -> None:
    write_recipes(tmp_path / "recipes")
    book = load_recipes(tmp_path / "recipes")
    site = make_site()
    one = prepare_images(book.build_order(["leaf"]), site, make_paths(tmp_path))
    other = image_paths(site, recipes_dir=tmp_path / "recipes", images_dir=tmp_path / "i2", cache_dir=tmp_path / "c2")
    two = prepare_images(book.build_order(["leaf"]), site, other)
    assert one["leaf"].definition != two["leaf"].definition  # From: differs …
    assert one["leaf"].address == two["leaf"].address  # … the address does not
    assert two["leaf"].cached_sif == tmp_path / "c2" / f"leaf-{two['leaf'].address[:16]}.sif"


def test_a_parent_change_changes_the_child(tmp_path: Path) -> None:
    write_recipes(tmp_path / "recipes")
    paths = make_paths(tmp_path)
    before = prepare_images(load_recipes(paths.recipes_dir).build_order(["leaf"]), make_site(), paths)
    write_recipes(tmp_path / "recipes", {"root": ROOT.replace("echo root", "echo ROOT")})
    after = prepare_images(load_recipes(paths.recipes_dir).build_order(["leaf"]), make_site(), paths)
    assert before["root"].address != after["root"].address
    assert before["leaf"].address != after["leaf"].address


def test_tree_and_file_digests(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "f").write_bytes(b"abc")
    assert file_sha256(tmp_path / "d" / "sub" / "f") == hashlib.sha256(b"abc").hexdigest()
    before = tree_sha256(tmp_path / "d")
    (tmp_path / "d" / "sub" / "g").write_bytes(b"")
    assert tree_sha256(tmp_path / "d") != before


def test_build_argv() -> None:
    target, definition = Path("/c/.x.sif.tmp-1"), Path("/i/logs/x.def")
    assert build_argv("apptainer", target, definition, fakeroot=True, compression="zstd", extra=["--notest"]) == [
        "apptainer",
        "build",
        "--force",
        "--fakeroot",
        "--mksquashfs-args",
        "-comp zstd",
        "--notest",
        "/c/.x.sif.tmp-1",
        "/i/logs/x.def",
    ]
    assert build_argv("singularity", target, definition, fakeroot=False, compression="gzip", extra=[]) == [
        "singularity",
        "build",
        "--force",
        "/c/.x.sif.tmp-1",
        "/i/logs/x.def",
    ]


def test_build_argv_with_the_recipes_mksquashfs_args() -> None:
    # One --mksquashfs-args string: apptainer passes it to mksquashfs split on spaces.
    target, definition = Path("/c/.x.sif.tmp-1"), Path("/i/logs/x.def")
    level = ["-Xcompression-level", "3"]
    argv = build_argv("apptainer", target, definition, fakeroot=False, compression="zstd", extra=[], squash_args=level)
    assert argv == [
        "apptainer",
        "build",
        "--force",
        "--mksquashfs-args",
        "-comp zstd -Xcompression-level 3",
        *map(str, (target, definition)),
    ]
    argv = build_argv(
        "apptainer", target, definition, fakeroot=False, compression="gzip", extra=[], squash_args=["-b", "1M"]
    )
    assert argv == ["apptainer", "build", "--force", "--mksquashfs-args", "-b 1M", str(target), str(definition)]
