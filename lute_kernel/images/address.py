"""Content addresses of images and sha256 digests of files.

Owns what names a build: sha256 over the rendered definition, the parent image's address and the
bytes of every ``%files`` source. The same inputs give the same address on every machine (host
paths of the SIF cache never enter it), so caches can be shared. Must not render or build.
"""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

from lute_kernel.errors import InputError

_CHUNK = 1 << 20
ADDRESS_VERSION = b"lute-image-address-v1"


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(path: Path) -> str:
    """Return the sha256 of a file, or of a folder's relative paths, symlink targets and file bytes."""
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            digest.update(str(full.relative_to(path)).encode() + b"\0")
            if full.is_symlink():
                digest.update(b"link\0" + os.readlink(full).encode() + b"\0")
            else:
                digest.update(file_sha256(full).encode() + b"\0")
    return digest.hexdigest()


def resolve_sources(sources: Iterable[str], base_dir: Path, where: str) -> List[Path]:
    """Return the host files of ``%files`` lines (relative to ``base_dir``, globs allowed).

    Raises:
        InputError: A source matches no file (the build would fail later, after minutes).
    """
    paths: List[Path] = []
    for source in sources:
        pattern = source if os.path.isabs(source) else str(base_dir / source)
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise InputError(f"{where}: %files source {source!r} does not exist")
        paths.extend(Path(m) for m in matches)
    return paths


def content_address(definition: str, parent_address: Optional[str], sources: Sequence[Path]) -> str:
    """Return the hex sha256 naming one build.

    Args:
        definition: The rendered definition file, with the parent SIF's path replaced by a
            placeholder (the path holds the cache folder, which differs between machines).
        parent_address: The parent image's address, or None for an image without a parent.
        sources: The ``%files`` sources; their paths and bytes both count.
    """
    digest = hashlib.sha256(ADDRESS_VERSION + b"\0definition\0" + definition.encode())
    digest.update(b"\0parent\0" + (parent_address or "").encode())
    for source in sources:
        digest.update(b"\0file\0" + str(source).encode() + b"\0" + tree_sha256(source).encode())
    return digest.hexdigest()
