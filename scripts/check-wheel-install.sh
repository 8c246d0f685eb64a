#!/usr/bin/env bash
# Install lute-kernel the way a user would (`pip install .`, NOT editable) into a throwaway venv and
# run it from outside the repository: `lute-kernel tasks`, a real `run Test`, `images ls` and
# `images build smoke` (linked from the image cache when it holds smoke; built otherwise).
#
#   bash scripts/check-wheel-install.sh [VENV]        (default VENV: /tmp/lute-wheel-venv)
#
# Only the files git knows (tracked, or new and not ignored) are installed: a copy of them is made
# first, so nothing left in the checkout (build/, *.egg-info, images/) can leak into the package.
# Records and scratch files go to a temporary folder (XDG_STATE_HOME), never the user's own.
# Options: --no-images skips the image commands. PYTHON picks the interpreter (default: python3).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv=/tmp/lute-wheel-venv
images=1
for arg in "$@"; do
  case "$arg" in
    --no-images) images=0 ;;
    -*) echo "check-wheel-install: unknown option $arg" >&2; exit 2 ;;
    *) venv="$arg" ;;
  esac
done
python="${PYTHON:-python3}"
scratch="$(mktemp -d /tmp/lute-wheel-check.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT

say() { printf 'check-wheel-install: %s\n' "$*"; }

say "copying the checkout's files to $scratch/src"
git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 || { say "$repo is not a git checkout"; exit 2; }
mkdir -p "$scratch/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -x -C "$scratch/src"

say "fresh venv $venv ($("$python" --version 2>&1)); pip install (not editable)"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$scratch/src"
rm -rf "$scratch/src"  # from here on only the installed package exists

work="$scratch/work"
mkdir -p "$work/data"
cat >"$work/cfg.yaml" <<EOF
%YAML 1.3
---
title: "installed package check"
experiment: "xpptut15"
run: 1
date: "2026/11/22"
lute_version: 0.1
task_timeout: 120
work_dir: "$work/data"
...
---
Test:
  compound_var:
    int_var: 1
  sleep_secs: 0
...
EOF

cd "$work"  # outside the repository: nothing may be found relative to it
export XDG_STATE_HOME="$scratch/state"
unset PYTHONPATH LUTE_TASKS_PATH LUTE_SITES_DIR LUTE_SITE_PATH LUTE_RECIPES_DIR LUTE_IMAGES_DIR LUTE_SITE
lute="$venv/bin/lute-kernel"

say "lute-kernel tasks"
tasks="$(COLUMNS=200 "$lute" tasks)"
printf '%s\n' "$tasks"
grep -q '^│ Test ' <<<"$tasks" || { say "FAIL: Test is not listed"; exit 1; }
if grep -q 'failed to load' <<<"$tasks"; then say "FAIL: a Task module failed to load"; exit 1; fi

say "lute-kernel run Test"
"$lute" run Test -c "$work/cfg.yaml"
test -s "$work/data/lute.db" || { say "FAIL: no lute.db"; exit 1; }

say "lute-kernel serve --detach; run Test through it"
export XDG_RUNTIME_DIR="$scratch/xdg"  # the check's own warm kernel, never the user's
mkdir -m 700 -p "$XDG_RUNTIME_DIR"
"$lute" serve --detach --idle-timeout 120
"$lute" run Test -c "$work/cfg.yaml"
served="$("$lute" serve --status)"
"$lute" serve --stop
grep -q '"served": 1' <<<"$served" || { say "FAIL: the run did not go through the warm kernel: $served"; exit 1; }

if [[ $images -eq 1 ]]; then
  say "lute-kernel images ls"
  "$lute" images ls
  say "lute-kernel images build smoke"
  "$lute" images build smoke
  records="$(find "$XDG_STATE_HOME/lute-kernel/images" -name images.lock.json)"
  grep -q '"smoke"' "$records" || { say "FAIL: smoke is not recorded in $records"; exit 1; }
  say "records in $(dirname "$records") (the user's state directory: an installed kernel has no checkout)"
fi
say "ok: the installed package works from $work"
