"""``run A B C`` (several Tasks in one warm process) and the lean ``tasks`` listing.

Several Tasks: each is prepared after the one before it is recorded (so DB-derived defaults see
its row), the first that does not complete stops the rest with one line naming what was not run,
and the exit code is that Task's — on the lean path and through typer alike. The lean ``tasks``
prints exactly what typer's command prints, and anything but a plain listing goes to typer.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, List

import pytest

from lute_kernel.cli.lean import parse_run, parse_tasks

REPO = Path(__file__).resolve().parents[2]
OK_TEST = {"sleep_secs": 0, "compound_var": {"int_var": 1}}


def _cli(args: List[str], env: Dict[str, str], *, lean: bool) -> subprocess.CompletedProcess:
    code = (
        "import sys; sys.argv = ['lute-kernel', *sys.argv[1:]];"
        + ("" if lean else "import lute_kernel.cli.lean as l; l.lean_command = lambda argv: None;")
        + "from lute_kernel.cli import main; main()"
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=REPO)


def test_several_tasks_parse_on_the_lean_path() -> None:
    options = parse_run(["run", "TestWriteOutput", "TestReadOutput", "-c", "x.yaml", "--skip-done"])
    assert options is not None and options.tasks == ["TestWriteOutput", "TestReadOutput"]


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "typer"])
def test_several_tasks_run_in_order_and_later_ones_read_earlier_rows(
    lean: bool, make_config: Callable[..., Path], cli_env: Dict[str, str], work_dir: Path
) -> None:
    config = make_config({"TestWriteOutput": {"num_vals": 5}, "TestReadOutput": {}, "Test": OK_TEST})
    done = _cli(["run", "TestWriteOutput", "TestReadOutput", "Test", "-c", str(config)], cli_env, lean=lean)
    assert done.returncode == 0, done.stdout + done.stderr
    status = [line.split(" in ")[0] for line in done.stdout.splitlines() if ": COMPLETED in " in line]
    assert status == ["TestWriteOutput: COMPLETED", "TestReadOutput: COMPLETED", "Test: COMPLETED"]
    with sqlite3.connect(work_dir / "lute.db") as db:
        [(in_file,)] = db.execute('SELECT "in_file" FROM TestReadOutput').fetchall()
        [(written,)] = db.execute('SELECT "outfile_name" FROM TestWriteOutput').fetchall()
    assert in_file.endswith(written)  # the default came from the row TestWriteOutput had just written


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "typer"])
@pytest.mark.parametrize(
    ("second", "code"),
    [({**OK_TEST, "throw_error": True}, 1), ({**OK_TEST, "sleep_secs": -1}, 2)],
    ids=["fails", "bad-input"],
)
def test_the_first_task_that_does_not_complete_stops_the_rest(
    lean: bool, second: dict, code: int, make_config: Callable[..., Path], cli_env: Dict[str, str]
) -> None:
    config = make_config({"TestWriteOutput": {"num_vals": 5}, "Test": second, "TestReadOutput": {}})
    done = _cli(["run", "TestWriteOutput", "Test", "TestReadOutput", "-c", str(config)], cli_env, lean=lean)
    assert done.returncode == code, done.stdout + done.stderr
    assert "TestWriteOutput: COMPLETED" in done.stdout and "TestReadOutput:" not in done.stdout
    assert done.stderr.splitlines()[-1] == f"error: stopped after Test (exit {code}); not run: TestReadOutput"


@pytest.mark.parametrize(
    ("argv", "lean"),
    [
        (["tasks"], True),
        (["tasks", "--site", "local"], True),
        (["tasks", "--no-show-failures"], True),
        (["tasks", "show", "Test"], False),
        (["tasks", "--help"], False),
        (["tasks", "--bogus"], False),
        (["run", "Test", "-c", "x"], False),
    ],
)
def test_only_a_plain_listing_takes_the_lean_tasks_path(argv: List[str], lean: bool) -> None:
    assert (parse_tasks(argv) is not None) == lean


def test_the_lean_listing_prints_what_typer_prints(cli_env: Dict[str, str]) -> None:
    lean, typer_ = (_cli(["tasks"], cli_env, lean=flag) for flag in (True, False))
    assert lean.returncode == typer_.returncode == 0, lean.stderr + typer_.stderr
    assert lean.stdout == typer_.stdout and "Tasks in" in lean.stdout


def test_a_bad_site_on_the_lean_listing_reads_as_typer_reports_it(cli_env: Dict[str, str]) -> None:
    lean, typer_ = (_cli(["tasks", "--site", "nosuch"], cli_env, lean=flag) for flag in (True, False))
    assert lean.returncode == typer_.returncode == 2
    assert lean.stderr == typer_.stderr and "unknown site 'nosuch'" in lean.stderr


def test_the_listing_cache_follows_the_recipes_the_site_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lute_kernel.cli import task_list

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    recipe = recipes / "lab.def.j2"
    recipe.write_text("{#- lute-image\ndescription: a lab image\n-#}\nBootstrap: localimage\nFrom: x.sif\n")
    monkeypatch.setenv("LUTE_RECIPES_DIR", str(recipes))
    written = recipe.stat().st_mtime_ns
    with monkeypatch.context() as clock:  # the listing runs within the tick the recipe was written in
        clock.setattr(task_list, "time", SimpleNamespace(time_ns=lambda: written + 1))
        assert task_list.recipe_facts(None) == (("lab",), {})
    assert not task_list._cache_path().exists()  # a file written this tick may change unseen: not cached
    for path in (recipe, recipes):
        os.utime(path, ns=(written - 10**9, written - 10**9))  # quiet for a second
    assert task_list.recipe_facts(None) == (("lab",), {})  # now cached
    assert task_list._cache_path().is_file()

    recipe.write_text(
        "{#- lute-image\ndescription: a lab image\nsites: [s3df]\n-#}\nBootstrap: localimage\nFrom: x.sif\n"
    )
    os.utime(recipe, ns=(1, 1))  # a different mtime even on a coarse clock
    assert task_list.recipe_facts(None) == (("lab",), {"lab": "s3df only"})  # an edited recipe is read again

    (recipes / "other.def.j2").write_text("{#- lute-image\ndescription: another\n-#}\nBootstrap: localimage\n")
    assert task_list.recipe_facts(None)[0] == ("lab", "other")  # a new recipe too

    elsewhere = tmp_path / "none"
    monkeypatch.setenv("LUTE_RECIPES_DIR", str(elsewhere))
    assert task_list.recipe_facts(None) == (None, {})  # another folder (here: none at all)

    site = tmp_path / "mine.yaml"
    site.write_text((REPO / "config" / "sites" / "local.yaml").read_text())
    monkeypatch.delenv("LUTE_RECIPES_DIR")
    site.write_text(site.read_text() + f"images:\n  recipes_dir: {recipes}\n")
    assert task_list.recipe_facts(str(site))[0] == ("lab", "other")  # the site's own recipes folder
