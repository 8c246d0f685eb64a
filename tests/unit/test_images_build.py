"""Image builds with a fake ``apptainer`` on PATH: skip, link from cache, rebuild, failure, locks."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
from images_fakes import FAR, LEAF, ROOT, build_calls, install_fake_apptainer, make_paths, make_site, write_recipes
from typer.testing import CliRunner

from lute_kernel.cli.app import app
from lute_kernel.errors import InputError
from lute_kernel.images import build as build_module
from lute_kernel.images import find_image
from lute_kernel.images.apptainer_build import ImageBuildError, run_build_command
from lute_kernel.images.build import BuildOutcome, build_images
from lute_kernel.images.manifest import read_manifest, read_sidecar, sidecar
from lute_kernel.images.paths import ImagePaths
from lute_kernel.images.status import image_statuses
from lute_kernel.sites import SiteProfile


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake apptainer on PATH; returns the log of its calls."""
    env: Dict[str, str] = {"PATH": os.environ.get("PATH", "")}
    log = install_fake_apptainer(tmp_path / "fakebin", env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return log


@pytest.fixture
def paths(tmp_path: Path) -> ImagePaths:
    write_recipes(tmp_path / "recipes")
    return make_paths(tmp_path)


@pytest.fixture
def site() -> SiteProfile:
    return make_site()


class Collected:
    def __init__(self) -> None:
        self.output = bytearray()
        self.status: List[str] = []

    def kwargs(self) -> Dict[str, Any]:
        return {"output": self.output.extend, "status": self.status.append}


def build(names: List[str], site: SiteProfile, paths: ImagePaths, **kw: Any) -> List[BuildOutcome]:
    return build_images(names, site, paths=paths, output=lambda _: None, status=lambda _: None, **kw)


def actions(outcomes: List[BuildOutcome]) -> Dict[str, str]:
    return {o.name: o.action for o in outcomes}


def test_a_first_build_builds_parents_first_and_records_everything(
    calls: Path, paths: ImagePaths, site: SiteProfile
) -> None:
    seen = Collected()
    outcomes = build_images(["leaf"], site, paths=paths, **seen.kwargs())
    assert actions(outcomes) == {"root": "built", "leaf": "built"}
    assert build_calls(calls) == ["root", "leaf"]
    assert b"INFO:    Starting build..." in seen.output  # the build's own output is streamed
    assert any(line.startswith("==> leaf: building on root from ") for line in seen.status)

    manifest = json.loads(paths.manifest.read_text())
    assert manifest["version"] == 1 and sorted(manifest["images"]) == ["leaf", "root"]
    leaf = read_manifest(paths.manifest)["leaf"]
    sif = paths.cached_sif("leaf", leaf.address)
    assert leaf.sif == str(sif) and sif.is_file()
    assert (leaf.name, leaf.parent, leaf.parent_address) == ("leaf", "root", outcomes[0].record.address)
    assert leaf.recipe == str(paths.recipes_dir / "leaf.def.j2")
    assert leaf.apptainer_version == "apptainer version 0.0.0-fake" and leaf.site == "local"
    assert leaf.size == sif.stat().st_size and leaf.mtime_ns == sif.stat().st_mtime_ns
    assert leaf.built_at.endswith("+00:00") and leaf.build_seconds >= 0
    assert os.readlink(paths.link("leaf")) == str(sif)
    assert read_sidecar(sif) == leaf
    # The log holds the argv and the output; the definition built is kept next to it.
    log = (paths.logs_dir / "leaf.log").read_text()
    assert log.startswith("$ apptainer build --force --fakeroot --mksquashfs-args -comp zstd ")
    assert "Build complete" in log
    definition = (paths.logs_dir / "leaf.def").read_text()
    assert f"From: {paths.cached_sif('root', outcomes[0].record.address)}" in definition
    assert not list(paths.cache_dir.glob(".*.tmp-*"))


def test_an_unchanged_build_is_skipped_fast_without_apptainer_or_hashing(
    calls: Path, paths: ImagePaths, site: SiteProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(["leaf"], site, paths)
    calls.write_text("")

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"hashed {path} on a skip")

    monkeypatch.setattr(build_module, "file_sha256", no_hashing)
    start = time.monotonic()
    again = build(["leaf"], site, paths)
    assert time.monotonic() - start < 1.0
    assert actions(again) == {"root": "skipped", "leaf": "skipped"}
    assert [o.record for o in again] == [o.record for o in first]
    assert calls.read_text() == ""  # not even `apptainer --version`


def test_no_names_builds_what_the_site_can_and_says_what_it_leaves_out(
    calls: Path, paths: ImagePaths, site: SiteProfile
) -> None:
    seen = Collected()
    outcomes = build_images([], site, paths=paths, **seen.kwargs())
    assert actions(outcomes) == {"root": "built", "leaf": "built"}
    assert "==> far: not built here (elsewhere only; this is site 'local')" in seen.status
    elsewhere = build([], make_site("elsewhere"), paths)
    assert actions(elsewhere) == {"root": "skipped", "leaf": "skipped", "far": "built"}  # same recipes: same addresses


def test_a_site_restricted_image_fails_fast_before_anything_runs(
    calls: Path, paths: ImagePaths, site: SiteProfile
) -> None:
    with pytest.raises(InputError) as info:
        build(["leaf", "far"], site, paths)
    assert str(info.value) == (
        "image 'far' is built only at site elsewhere (its sources are only reachable there); this is site 'local'. "
        "Build it there: `lute-kernel images build far --site elsewhere`"
    )
    assert calls.read_text() == "" and not paths.manifest.exists()


def test_a_bad_recipe_stops_everything_before_the_first_build(
    calls: Path, paths: ImagePaths, site: SiteProfile
) -> None:
    write_recipes(paths.recipes_dir, {"leaf": LEAF.replace("%post", "{% for %}\n%post")})
    with pytest.raises(InputError, match=r"leaf.def.j2:8: template syntax error in recipe 'leaf'"):
        build(["leaf"], site, paths)
    assert calls.read_text() == ""  # root was not built either: every recipe renders first


def test_unknown_images_are_input_errors(calls: Path, paths: ImagePaths, site: SiteProfile) -> None:
    with pytest.raises(InputError, match=r"unknown image 'lefa'.*did you mean leaf\?.*`just build-image lefa`"):
        build(["lefa"], site, paths)


def test_a_changed_recipe_rebuilds_it_and_its_children_only(calls: Path, paths: ImagePaths, site: SiteProfile) -> None:
    first = {o.name: o.record for o in build(["leaf"], site, paths)}
    write_recipes(paths.recipes_dir, {"leaf": LEAF.replace("echo leaf", "echo leaf v2")})
    assert {s.name: s.stale for s in image_statuses(site, paths)} == {"far": None, "leaf": True, "root": False}
    calls.write_text("")
    second = build(["leaf"], site, paths)
    assert actions(second) == {"root": "skipped", "leaf": "built"}
    assert build_calls(calls) == ["leaf"]
    assert Path(first["leaf"].sif).is_file()  # the previous SIF stays in the cache
    assert os.readlink(paths.link("leaf")) == second[1].record.sif != first["leaf"].sif

    write_recipes(paths.recipes_dir, {"root": ROOT.replace("echo root", "echo root v2")})
    calls.write_text("")
    assert actions(build(["leaf"], site, paths)) == {"root": "built", "leaf": "built"}
    assert build_calls(calls) == ["root", "leaf"]


def test_force_rebuilds_the_named_images_only(calls: Path, paths: ImagePaths, site: SiteProfile) -> None:
    build(["leaf"], site, paths)
    calls.write_text("")
    assert actions(build(["leaf"], site, paths, force=True)) == {"root": "skipped", "leaf": "built"}
    calls.write_text("")
    assert actions(build([], site, paths, force=True)) == {"root": "built", "leaf": "built"}
    assert build_calls(calls) == ["root", "leaf"]


def test_another_clone_links_the_cached_sif_without_building(
    calls: Path, paths: ImagePaths, site: SiteProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = {o.name: o.record for o in build(["leaf"], site, paths)}
    clone = ImagePaths(paths.recipes_dir, paths.images_dir.parent / "clone-images", paths.cache_dir)
    calls.write_text("")
    monkeypatch.setattr(build_module, "file_sha256", lambda p: pytest.fail(f"hashed {p}"))
    outcomes = build(["leaf"], site, clone)
    assert actions(outcomes) == {"root": "linked", "leaf": "linked"}
    assert calls.read_text() == ""
    assert read_manifest(clone.manifest) == first
    assert os.readlink(clone.link("leaf")) == first["leaf"].sif
    assert actions(build(["leaf"], site, clone)) == {"root": "skipped", "leaf": "skipped"}


def test_a_cached_sif_without_its_record_is_hashed_once_and_adopted(
    calls: Path, paths: ImagePaths, site: SiteProfile
) -> None:
    leaf = {o.name: o.record for o in build(["leaf"], site, paths)}["leaf"]
    sidecar(Path(leaf.sif)).unlink()
    paths.link("leaf").unlink()
    calls.write_text("")
    outcomes = build(["leaf"], site, paths)
    assert actions(outcomes) == {"root": "skipped", "leaf": "linked"}
    assert outcomes[1].record.sha256 == leaf.sha256 and calls.read_text() == ""
    assert read_sidecar(Path(leaf.sif)) is not None


def test_a_cached_sif_that_changed_is_built_again(calls: Path, paths: ImagePaths, site: SiteProfile) -> None:
    leaf = {o.name: o.record for o in build(["leaf"], site, paths)}["leaf"]
    with open(leaf.sif, "ab") as sif:
        sif.write(b"corrupted")
    calls.write_text("")
    outcomes = build(["leaf"], site, paths)
    assert actions(outcomes) == {"root": "skipped", "leaf": "built"}
    assert outcomes[1].record.sha256 == leaf.sha256  # the fake writes the same bytes again


def test_a_build_that_fails_half_way_leaves_no_partial_image_and_keeps_the_previous(
    calls: Path, paths: ImagePaths, site: SiteProfile
) -> None:
    good = {o.name: o.record for o in build(["leaf"], site, paths)}["leaf"]
    write_recipes(paths.recipes_dir, {"leaf": LEAF.replace("echo leaf", "echo FAIL_HALF_WAY; exit 1")})
    seen = Collected()
    with pytest.raises(ImageBuildError) as info:
        build_images(["leaf"], site, paths=paths, **seen.kwargs())
    message = str(info.value)
    assert message.startswith("building image 'leaf' failed (apptainer exit 255); full log ")
    assert f"the previous image is kept ({paths.link('leaf')} -> {good.sif})" in message
    assert "While running %post: exit status 1" in message and b"While running %post" in seen.output
    # The fake wrote its target before failing: nothing of it is left, and nothing was published.
    assert not list(paths.cache_dir.glob(".*.tmp-*"))
    assert sorted(p.name for p in paths.cache_dir.glob("leaf-*")) == sorted(
        [Path(good.sif).name, Path(good.sif).name + ".json"]
    )
    assert os.readlink(paths.link("leaf")) == good.sif
    assert read_manifest(paths.manifest)["leaf"] == good
    assert find_image("leaf", site, images_dir=paths.images_dir, recipes_dir=paths.recipes_dir).sif == Path(good.sif)
    assert "FAIL_HALF_WAY" in (paths.logs_dir / "leaf.def").read_text()  # what was built, for the log reader


def test_leftovers_of_a_killed_build_are_removed(calls: Path, paths: ImagePaths, site: SiteProfile) -> None:
    paths.cache_dir.mkdir(parents=True)
    leftover = paths.cache_dir / ".root-0123456789abcdef.sif.tmp-99999"
    leftover.write_text("half a SIF")
    build(["root"], site, paths)
    assert not leftover.exists()


def test_concurrent_builds_of_one_image_build_it_once(
    calls: Path, paths: ImagePaths, site: SiteProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_APPTAINER_SLEEP", "1")
    results: Dict[int, List[BuildOutcome]] = {}
    statuses: List[str] = []

    def run(index: int) -> None:
        results[index] = build_images(["root"], site, paths=paths, output=lambda _: None, status=statuses.append)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)  # the first one holds the lock when the second arrives
    for thread in threads:
        thread.join(timeout=30)
    assert build_calls(calls) == ["root"]
    assert sorted(results[i][0].action for i in range(2)) == ["built", "skipped"]
    assert results[0][0].record == results[1][0].record
    assert any("==> root: waiting for another build" in line for line in statuses)
    assert not list(paths.cache_dir.glob(".*.tmp-*"))


def test_concurrent_builds_of_different_images_keep_both_manifest_entries(
    calls: Path, tmp_path: Path, site: SiteProfile
) -> None:
    write_recipes(tmp_path / "recipes", {"a": ROOT, "b": ROOT.replace("echo root", "echo b")})
    paths = make_paths(tmp_path)
    threads = [threading.Thread(target=build, args=([name], site, paths)) for name in ("a", "b") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(read_manifest(paths.manifest)) == ["a", "b"]


def test_the_build_seam_streams_and_logs(tmp_path: Path) -> None:
    chunks: List[bytes] = []
    log = tmp_path / "logs" / "x.log"
    argv = ["sh", "-c", "echo out; echo err >&2; printf 'progress\\r'; exit 3"]
    code = run_build_command(argv, cwd=tmp_path, log_path=log, output=chunks.append)
    assert code == 3
    assert b"".join(chunks).replace(b"err\n", b"") == b"out\nprogress\r"
    assert log.read_bytes().startswith(b"$ sh -c echo out;")
    assert b"err\n" in log.read_bytes()


def test_a_missing_apptainer_is_a_clear_error(
    paths: ImagePaths, site: SiteProfile, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ImageBuildError, match=r"cannot run 'apptainer'.*scripts/install-apptainer.sh"):
        build(["root"], site, paths)


# --- find_image -----------------------------------------------------------------------------------


def test_find_image_returns_the_built_sif(calls: Path, paths: ImagePaths, site: SiteProfile) -> None:
    leaf = {o.name: o.record for o in build(["leaf"], site, paths)}["leaf"]
    found = find_image("leaf", site, images_dir=paths.images_dir, recipes_dir=paths.recipes_dir)
    assert found.sif == Path(leaf.sif) and found.address == leaf.address
    assert found.sha256 == hashlib.sha256(Path(leaf.sif).read_bytes()).hexdigest()


def test_a_sandbox_site_unpacks_each_build_once_and_runs_from_it(calls: Path, paths: ImagePaths) -> None:
    site = make_site(run_from="sandbox")
    leaf = {o.name: o.record for o in build(["leaf"], site, paths)}["leaf"]
    found = find_image("leaf", site, images_dir=paths.images_dir, recipes_dir=paths.recipes_dir)
    assert found.sandbox == Path(leaf.sif).with_name(Path(leaf.sif).stem + ".sandbox")
    assert found.runnable == found.sandbox and (found.sandbox / "from.sif").read_bytes() == Path(leaf.sif).read_bytes()
    unpacks = [line for line in calls.read_text().splitlines() if "--sandbox" in line]
    assert len(unpacks) == 2  # root and leaf
    build(["leaf"], site, paths)  # up to date: nothing unpacked again
    assert len([line for line in calls.read_text().splitlines() if "--sandbox" in line]) == 2
    assert list(found.sandbox.parent.glob("*.tmp-*")) == []


def test_a_sandbox_site_without_the_unpacked_copy_says_what_to_build(calls: Path, paths: ImagePaths) -> None:
    build(["leaf"], make_site(), paths)  # built by a site that runs SIFs
    with pytest.raises(InputError, match="just build-image leaf"):
        find_image("leaf", make_site(run_from="sandbox"), images_dir=paths.images_dir, recipes_dir=paths.recipes_dir)


def test_find_image_follows_the_environment(
    calls: Path, paths: ImagePaths, site: SiteProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(["root"], site, paths)
    monkeypatch.setenv("LUTE_RECIPES_DIR", str(paths.recipes_dir))
    monkeypatch.setenv("LUTE_IMAGES_DIR", str(paths.images_dir))
    assert find_image("root", site).name == "root"
    monkeypatch.delenv("LUTE_IMAGES_DIR")
    other = make_site(images_dir=str(paths.images_dir))  # the site option, when the variable is unset
    assert find_image("root", other).name == "root"


@pytest.mark.parametrize(
    ("name", "damage", "expected"),
    [
        ("nope", None, r"unknown image 'nope': no recipe .*`just build-image nope`"),
        ("leaf", None, r"image 'leaf' is not built: run `just build-image leaf` \(manifest "),
        ("far", None, r"image 'far' is not built \(it is built only at site elsewhere\): run `just build-image far`"),
        ("root", "delete", r"image 'root': its SIF .* is missing: run `just build-image root`"),
        ("root", "touch", r"image 'root': its SIF .* changed since it was built .*: run `just build-image root`"),
        ("root", "garble", r"cannot read the image manifest .*`just build-images` rewrites it"),
    ],
)
def test_find_image_errors_say_what_to_build(
    calls: Path, paths: ImagePaths, site: SiteProfile, name: str, damage: Any, expected: str
) -> None:
    root = build(["root"], site, paths)[0].record
    if damage == "delete":
        Path(root.sif).unlink()
    elif damage == "touch":
        os.utime(root.sif, ns=(root.mtime_ns + 10**9, root.mtime_ns + 10**9))
    elif damage == "garble":
        paths.manifest.write_text("{not json")
    with pytest.raises(InputError, match=expected):
        find_image(name, site, images_dir=paths.images_dir, recipes_dir=paths.recipes_dir)


# --- the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def cli_paths(paths: ImagePaths, calls: Path, monkeypatch: pytest.MonkeyPatch) -> ImagePaths:
    monkeypatch.setenv("LUTE_RECIPES_DIR", str(paths.recipes_dir))
    monkeypatch.setenv("LUTE_IMAGES_DIR", str(paths.images_dir))
    monkeypatch.setenv("LUTE_IMAGE_CACHE", str(paths.cache_dir))
    monkeypatch.delenv("LUTE_SITE", raising=False)
    return paths


def test_cli_build_and_ls(cli_paths: ImagePaths) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["images", "build", "leaf"])
    assert result.exit_code == 0, result.output
    assert "images: root built, leaf built" in result.output
    result = runner.invoke(app, ["images", "build", "leaf"])
    assert "==> leaf: up to date (" in result.output and "images: root skipped, leaf skipped" in result.output

    write_recipes(cli_paths.recipes_dir, {"root": ROOT.replace("echo root", "echo changed")})
    result = runner.invoke(app, ["images", "ls"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    assert set(rows) == {"far", "leaf", "root"}
    assert "yes" in rows["root"] and "stale" in rows["root"] and "stale" in rows["leaf"]
    assert "no" in rows["far"] and "elsewhere only" in rows["far"]
    record = read_manifest(cli_paths.manifest)["leaf"]
    assert record.sha256[:12] in rows["leaf"]


def test_cli_bad_input_exits_2_and_build_failures_exit_1(cli_paths: ImagePaths) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["images", "build", "far"])
    assert result.exit_code == 2 and "error: image 'far' is built only at site elsewhere" in result.output
    write_recipes(cli_paths.recipes_dir, {"root": ROOT.replace("%post", "%post\n    FAIL_HALF_WAY")})
    result = runner.invoke(app, ["images", "build", "root"])
    assert result.exit_code == 1 and "error: building image 'root' failed" in result.output


def test_far_recipe_text_is_valid_for_its_site(calls: Path, paths: ImagePaths) -> None:
    assert "sites: [elsewhere]" in FAR
    assert actions(build(["far"], make_site("elsewhere"), paths)) == {"root": "built", "far": "built"}


def test_a_cache_moved_elsewhere_is_adopted_under_its_new_path(
    calls: Path, paths: ImagePaths, site: SiteProfile, tmp_path: Path
) -> None:
    first = {o.name: o.record for o in build(["leaf"], site, paths)}
    moved = tmp_path / "moved-cache"
    os.rename(paths.cache_dir, moved)  # rename keeps mtimes; the sidecars still name the old paths
    other = ImagePaths(paths.recipes_dir, tmp_path / "other-images", moved)
    calls.write_text("")
    outcomes = build(["leaf"], site, other)
    assert actions(outcomes) == {"root": "linked", "leaf": "linked"} and calls.read_text() == ""
    assert outcomes[1].record.sif == str(moved / Path(first["leaf"].sif).name)
    assert outcomes[1].record.sha256 == first["leaf"].sha256
    assert actions(build(["leaf"], site, other)) == {"root": "skipped", "leaf": "skipped"}


def test_ls_shows_a_broken_recipe_as_a_problem(cli_paths: ImagePaths) -> None:
    write_recipes(cli_paths.recipes_dir, {"leaf": LEAF.replace("echo leaf", "echo {{ nope }}")})
    statuses = {s.name: s for s in image_statuses(make_site(), cli_paths)}
    assert statuses["leaf"].address is None and "'nope' is undefined" in statuses["leaf"].problem
    assert statuses["root"].address is not None and statuses["root"].problem == ""
    assert not statuses["far"].buildable and statuses["far"].restriction == "elsewhere only"
    result = CliRunner().invoke(app, ["images", "ls"])
    assert result.exit_code == 0
    assert "problem leaf: " in result.output and "'nope' is undefined" in result.output


def test_the_site_profile_validates_image_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lute_kernel.errors import ConfigError
    from lute_kernel.sites import load_site

    monkeypatch.setenv("LUTE_SITES_DIR", str(tmp_path))
    (tmp_path / "lab.yaml").write_text("images:\n  bootstrap: podman\n  cache: /x\n")
    with pytest.raises(ConfigError) as info:
        load_site("lab")
    assert "images.bootstrap: Input should be 'debootstrap' or 'docker'" in info.value.message
    assert "images.cache: Extra inputs are not permitted" in info.value.message
    (tmp_path / "lab.yaml").write_text("images:\n  cache_dir: ~/imgs\n")
    monkeypatch.delenv("LUTE_IMAGE_CACHE", raising=False)
    from lute_kernel.images.paths import default_cache_dir

    assert default_cache_dir(load_site("lab")) == Path.home() / "imgs"
    monkeypatch.setenv("LUTE_IMAGE_CACHE", str(tmp_path / "env-cache"))
    assert default_cache_dir(load_site("lab")) == tmp_path / "env-cache"
