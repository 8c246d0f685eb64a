# lute-kernel tasks. Run through ./dev (it sets up .venv first): ./dev test, ./dev demo, …
# Inside an activated .venv plain `just <recipe>` works too.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

# The recipes use the tools of the project's .venv, whatever the caller's PATH.
export PATH := justfile_directory() / ".venv" / "bin" + ":" + env_var("PATH")

# List the recipes.
default:
    @"{{ just_executable() }}" --justfile "{{ justfile() }}" --list --unsorted

# The whole test suite: unit, integration and functional tests, every marker (what CI runs).
test *args:
    pytest -q -p no:cacheprovider "$@"

# Unit tests only (no end-to-end CLI runs): fast.
test-unit *args:
    pytest -q -p no:cacheprovider -m "not integration" "$@"

# The reliability suite (tests/reliability, also part of `test`): bad input, Task faults, kernel signals,
# the DB under concurrency, IPC strangers, container isolation. Prints the figures table at the end.
reliability *args:
    pytest -q -p no:cacheprovider tests/reliability "$@"

# ruff (lint + format check) and mypy --strict on lute_kernel/; runs all three, fails if any fails.
lint:
    #!/usr/bin/env bash
    set -uo pipefail
    rc=0
    for cmd in "ruff check ." "ruff format --check ." "mypy"; do
        echo "==> $cmd"
        $cmd || rc=1
    done
    exit $rc

# Apply ruff's formatting and safe fixes.
fmt:
    ruff format .
    ruff check --fix .

# Build the Apptainer images: all this site can build, or the NAMES given (parents first); unchanged ones are skipped.
build-images *names:
    lute-kernel images build "$@"

# Build one image and its parents: just build-image psana2 [--force]
build-image name *args:
    lute-kernel images build "$@"

# Benchmarks of issue 11 (P1-P9), each against the same work without the kernel: prints the table with verdicts,
# writes bench/results/latest.json (~9 min; --quick ~5 min; --only P1,P3; --readme rewrites the README table).
bench *args:
    python bench/run.py "$@"

# It installs what it needs (the flows extra, Apptainer, the smoke image), runs config/examples/test_dag.yaml
# (with its failing branch) and shows the flow's table and the DB.
# The main job: an upstream-format DAG run as a Prefect flow, each Task in its container.
demo:
    #!/usr/bin/env bash
    set -euo pipefail
    python -c "import prefect" 2>/dev/null || { echo "==> installing the flows extra (Prefect)"; pip install --quiet -e ".[flows]"; }
    command -v apptainer >/dev/null || bash scripts/install-apptainer.sh
    echo "==> lute-kernel images build base smoke (seconds when cached)"
    lute-kernel images build base smoke
    export LUTE_REPO="$PWD" LUTE_WORK_DIR="$PWD/.demo/flow" DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
    rm -rf "$LUTE_WORK_DIR" && mkdir -p "$LUTE_WORK_DIR"
    dag=config/examples/test_dag.yaml cfg=config/examples/test.yaml
    step() { printf '\n==> %s\n' "$*"; "$@"; }
    step lute-kernel flow show "$dag" -c "$cfg" --runtime apptainer
    # No PREFECT_API_URL: Prefect starts a temporary local server for this one flow run (~15 s).
    # BinaryErrTester fails on purpose: exit code 1, and every other branch completes.
    rc=0
    step lute-kernel flow run "$dag" -c "$cfg" --runtime apptainer --experiment xpptut15 --run 14 || rc=$?
    if [[ $rc -ne 1 ]]; then echo "demo: the flow should exit 1 (BinaryErrTester fails on purpose), got $rc" >&2; exit 1; fi
    echo "(exit code 1, as expected: BinaryErrTester failed, its siblings completed)"
    step lute-kernel db ls -c "$cfg"
    step lute-kernel db show TestReadOutput -c "$cfg"
    step lute-kernel report -c "$cfg" -o "$LUTE_WORK_DIR/report.html"
    printf '\ndemo: done. The DB is %s/lute.db, the report %s/report.html (lute-kernel db view -c %s to browse);\n' \
        "$LUTE_WORK_DIR" "$LUTE_WORK_DIR" "$cfg"
    echo "the fast local-only demo: ./dev demo-local"

# The fast local-only demo (no images, no Prefect): run the test Tasks one by one from config/examples/test.yaml.
demo-local:
    #!/usr/bin/env bash
    set -euo pipefail
    cfg=config/examples/test.yaml
    export LUTE_REPO="$PWD" LUTE_WORK_DIR="$PWD/.demo/work"
    rm -rf "$LUTE_WORK_DIR" && mkdir -p "$LUTE_WORK_DIR"
    step() { printf '\n==> %s\n' "$*"; "$@"; }
    echo "demo: work_dir $LUTE_WORK_DIR (the config's header reads it from \$LUTE_WORK_DIR)"
    step lute-kernel tasks
    step lute-kernel explain TestBinary -c "$cfg"
    step lute-kernel run Tester -c "$cfg"
    step lute-kernel run TestSocket -c "$cfg"
    step lute-kernel run WriteTester -c "$cfg"
    # TestReadOutput's in_file defaults to what TestWriteOutput recorded in the DB, so the
    # whole file validates only once WriteTester has run (before, validate reports that section).
    step lute-kernel validate -c "$cfg"
    step lute-kernel run ReadTester -c "$cfg"
    step lute-kernel run TestBinary -c "$cfg"
    # A Task that fails on purpose: exit code 1 and a FAILED row with valid_flag 0 are expected.
    rc=0
    step lute-kernel run TestBinaryErr -c "$cfg" || rc=$?
    if [[ $rc -ne 1 ]]; then echo "demo: TestBinaryErr should exit 1 (Task failed), got $rc" >&2; exit 1; fi
    echo "(exit code 1, as expected)"
    step lute-kernel db ls -c "$cfg"
    step lute-kernel db show Test -c "$cfg"
    printf '\ndemo: done. The DB is %s/lute.db; try: .venv/bin/lute-kernel db show TestBinaryErr -w %s\n' \
        "$LUTE_WORK_DIR" "$LUTE_WORK_DIR"

# The real thing: install Apptainer (root), build the psana2 image, write an XTC2 run with psana's own
# xtcwriter inside it, and reduce it with SmallDataPsana2 in a container (then with 3 MPI ranks).
demo-psana2:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v apptainer >/dev/null || bash scripts/install-apptainer.sh
    lute-kernel images build psana2
    export LUTE_WORK_DIR="$PWD/.demo/psana2"
    rm -rf "$LUTE_WORK_DIR" && mkdir -p "$LUTE_WORK_DIR/xtc/smalldata"
    image=$(python -c 'from lute_kernel.images import find_image; from lute_kernel.sites import load_site; print(find_image("psana2", load_site()).runnable)')
    run=xpptut15-r0014-s000-c000
    echo "==> writing 200 events of xpptut15 run 14 with psana's xtcwriter (inside the image)"
    apptainer exec --containall --bind "$LUTE_WORK_DIR" "$image" sh -c \
        "cd $LUTE_WORK_DIR/xtc && xtcwriter -f $run.xtc2 -n 200 >/dev/null && smdwriter -f $run.xtc2 -o smalldata/$run.smd.xtc2 >/dev/null"
    cfg=config/examples/psana2.yaml
    echo "==> lute-kernel run SmallDataPsana2 -c $cfg --runtime apptainer"
    lute-kernel run SmallDataPsana2 -c "$cfg" --runtime apptainer
    if command -v mpirun >/dev/null && [[ $(nproc) -ge 3 ]]; then
        echo "==> the same with 3 MPI ranks"
        lute-kernel run SmallDataPsana2 -c "$cfg" --runtime apptainer --ranks 3
    fi
    lute-kernel db show SmallDataPsana2 -w "$LUTE_WORK_DIR"
