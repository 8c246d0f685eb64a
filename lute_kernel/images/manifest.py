"""The build record: ``images/images.lock.json``, and a copy of each record next to its cached SIF.

Owns the ``ImageRecord`` model and reading/updating the manifest safely (a lock around
read-modify-write, an atomic rename for the write). The sidecar ``<sif>.json`` in the cache lets
another clone adopt a cached SIF without hashing it again. Must not build or render.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from lute_kernel.errors import InputError
from lute_kernel.images.locking import exclusive_lock, write_atomically
from lute_kernel.images.mpi import ImageMpi
from lute_kernel.images.paths import ImagePaths

MANIFEST_VERSION = 1


class ManifestError(InputError):
    """The manifest cannot be read; rebuilding (``just build-images``) rewrites it."""


class ImageRecord(BaseModel):
    """What was built for one image, and how to tell that its SIF is still the same."""

    model_config = ConfigDict(extra="forbid")

    name: str
    recipe: str
    address: str
    parent: Optional[str] = None
    parent_address: Optional[str] = None
    sif: str
    sha256: str
    size: int
    mtime_ns: int
    apptainer_version: str
    built_at: str
    build_seconds: float
    site: str
    mpi: Optional[ImageMpi] = None
    """The MPI its recipe declared (also a SIF label): what the srun launcher wires its ranks up with."""

    def sif_unchanged(self) -> bool:
        """Return whether the SIF still has the recorded size and mtime (no re-hash: that takes seconds)."""
        try:
            stat = os.stat(self.sif)
        except OSError:
            return False
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


def read_manifest(path: Path) -> Dict[str, ImageRecord]:
    """Return the records of ``images.lock.json`` by image name (none if the file is absent)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ManifestError(
            f"{path}: cannot read the image manifest ({exc}); `just build-images` rewrites it"
        ) from None
    try:
        return {name: ImageRecord.model_validate(rec) for name, rec in dict(data.get("images", {})).items()}
    except (ValidationError, AttributeError, TypeError) as exc:
        raise ManifestError(
            f"{path}: the image manifest is malformed ({exc}); `just build-images` rewrites it"
        ) from None


def record_image(paths: ImagePaths, record: ImageRecord) -> None:
    """Add or replace one image's record in the manifest (under the manifest lock)."""
    with exclusive_lock(paths.manifest_lock):
        try:
            records = read_manifest(paths.manifest)
        except ManifestError:
            records = {}  # every entry can be recovered from the cache's sidecars
        records[record.name] = record
        body = {
            "version": MANIFEST_VERSION,
            "images": {name: rec.model_dump() for name, rec in sorted(records.items())},
        }
        write_atomically(paths.manifest, json.dumps(body, indent=2) + "\n")


def sidecar(sif: Path) -> Path:
    """Return the record file kept next to a cached SIF."""
    return sif.with_name(sif.name + ".json")


def write_sidecar(record: ImageRecord) -> None:
    """Store ``record`` next to its cached SIF."""
    write_atomically(sidecar(Path(record.sif)), record.model_dump_json(indent=2) + "\n")


def read_sidecar(sif: Path) -> Optional[ImageRecord]:
    """Return the record stored next to a cached SIF, if it is readable."""
    try:
        return ImageRecord.model_validate_json(sidecar(sif).read_text())
    except (OSError, ValueError):
        return None
