"""The one seam through which image builds run ``apptainer``.

Owns running ``apptainer build`` with its output streamed live (raw bytes, so progress bars stay
progress bars) to the terminal and to a log file, and asking ``apptainer --version``; both start
through ``lute_kernel.spawn`` (``stream_command``, ``run_command``). Unit tests put a fake
``apptainer`` on PATH, or replace ``run_build_command``. Must not decide what to build.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from lute_kernel.errors import LaunchError, LuteError
from lute_kernel.spawn import CommandTimedOut, run_command, stream_command

OutputSink = Callable[[bytes], None]


class ImageBuildError(LuteError):
    """An image build failed (the previous image, if any, is kept)."""


def terminal_output(chunk: bytes) -> None:
    """Write build output to stdout as it arrives."""
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def build_argv(
    binary: str,
    target: Path,
    definition: Path,
    *,
    fakeroot: bool,
    compression: str,
    extra: Sequence[str],
    squash_args: Sequence[str] = (),
) -> List[str]:
    """Return the ``apptainer build`` argv (pure: the builder and tests share it).

    ``squash_args`` are the recipe's own mksquashfs options (its ``mksquashfs_args``), passed after
    the site's compression in apptainer's one ``--mksquashfs-args`` string.
    """
    argv = [binary, "build", "--force"]
    if fakeroot:
        argv.append("--fakeroot")
    squash = [f"-comp {compression}"] if compression != "gzip" else []  # gzip is apptainer's default
    squash += list(squash_args)
    if squash:
        argv += ["--mksquashfs-args", " ".join(squash)]
    return [*argv, *extra, str(target), str(definition)]


def run_build_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    log_path: Path,
    env: Optional[Dict[str, str]] = None,
    output: OutputSink = terminal_output,
) -> int:
    """Run one build command; stream its output to ``output`` and ``log_path``; return its exit code."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        log.write(("$ " + " ".join(argv) + "\n").encode())

        def tee(chunk: bytes) -> None:
            log.write(chunk)
            log.flush()  # so that `tail -f` on the log follows the build
            output(chunk)

        try:
            return stream_command(argv, tee, env=env, cwd=cwd)
        except LaunchError as exc:
            raise ImageBuildError(f"{exc} (install Apptainer: scripts/install-apptainer.sh)") from None


def apptainer_version(binary: str) -> str:
    """Return ``apptainer --version`` (e.g. ``apptainer version 1.4.5``)."""
    try:
        done = run_command([binary, "--version"], timeout=60)
    except CommandTimedOut as exc:
        raise ImageBuildError(str(exc)) from None
    except LaunchError as exc:
        raise ImageBuildError(f"{exc} (install Apptainer: scripts/install-apptainer.sh)") from None
    if done.returncode != 0:
        raise ImageBuildError(f"{binary} --version failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()
