"""Unpacked copies of built SIFs, for sites where Apptainer mounts SIFs through FUSE.

Owns ``<cache>/<name>-<address>.sandbox/``: an ``apptainer build --sandbox`` of the cached SIF,
made after a build (site option ``images.run_from: sandbox``). Where root cannot use kernel
squashfs mounts (this machine, CI), Apptainer reads a SIF through squashfuse, and a Python start
that imports pydantic and pyzmq takes ~0.5 s instead of ~0.2 s from a directory. The SIF stays the
built artefact and provenance (its sha256 is recorded); the sandbox is derived from it, made into a
temporary folder under a lock and renamed into place, and marked with the SIF's sha256 so a stale
one is never used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Optional

from lute_kernel.images import apptainer_build
from lute_kernel.images.apptainer_build import ImageBuildError, OutputSink
from lute_kernel.images.locking import exclusive_lock
from lute_kernel.images.manifest import ImageRecord
from lute_kernel.sites import SiteProfile

MARKER = ".lute-unpacked-from"


def sandbox_for(sif: Path) -> Path:
    """Return where the unpacked copy of ``sif`` lives (next to it in the cache)."""
    return sif.with_name(f"{sif.stem}.sandbox")


def ready_sandbox(sif: Path, sha256: str) -> Optional[Path]:
    """Return the unpacked copy of ``sif`` if it exists and was made from this very SIF."""
    folder = sandbox_for(sif)
    try:
        return folder if (folder / MARKER).read_text().strip() == sha256 else None
    except OSError:
        return None


def unpack(sif: Path, sha256: str, *, binary: str, log_path: Path, output: OutputSink) -> Path:
    """Make (once) the unpacked copy of ``sif``; return its folder."""
    if (ready := ready_sandbox(sif, sha256)) is not None:
        return ready
    folder = sandbox_for(sif)
    with exclusive_lock(folder.with_name(f"{folder.name}.lock")):
        if (ready := ready_sandbox(sif, sha256)) is not None:
            return ready
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        argv = [binary, "build", "--force", "--sandbox", str(tmp), str(sif)]
        code = apptainer_build.run_build_command(argv, cwd=sif.parent, log_path=log_path, output=output)
        if code != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ImageBuildError(f"unpacking {sif} into a sandbox failed (apptainer exit {code}); log {log_path}")
        (tmp / MARKER).write_text(sha256 + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(tmp, folder)
    return folder


def unpack_for_site(
    record: ImageRecord, site: SiteProfile, log_path: Path, output: OutputSink, status: Callable[[str], None]
) -> Path:
    """Make the unpacked copy of a built image for a site that runs from sandboxes (says so when it does)."""
    sif = Path(record.sif)
    if ready_sandbox(sif, record.sha256) is None:
        status(f"==> {record.name}: unpacking into {sandbox_for(sif)} (site runs from sandboxes)")
    return unpack(sif, record.sha256, binary=site.apptainer.binary, log_path=log_path, output=output)
