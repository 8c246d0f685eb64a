"""Shared helpers of the image unit tests: a fake ``apptainer`` and tiny recipe folders."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

from lute_kernel.images.paths import ImagePaths
from lute_kernel.sites import ImageSettings, SiteProfile

FAKE_APPTAINER = r"""#!/usr/bin/env bash
# Fake apptainer: `--version`, and `build [options] TARGET DEFINITION` (writes TARGET from DEFINITION).
set -eu
echo "$*" >> "${FAKE_APPTAINER_LOG:-/dev/null}"
if [[ $1 == --version ]]; then echo "apptainer version 0.0.0-fake"; exit 0; fi
[[ $1 == build ]] || { echo "fake apptainer: unsupported command $1" >&2; exit 2; }
target=${@: -2:1}
definition=${@: -1}
echo "INFO:    Starting build..."
if [[ " $* " == *" --sandbox "* ]]; then  # unpack: DEFINITION is the SIF, TARGET a folder
  mkdir -p "$target" && cp "$definition" "$target/from.sif"
  echo "INFO:    Build complete: $target"
  exit 0
fi
sleep "${FAKE_APPTAINER_SLEEP:-0}"
{ echo "fake SIF"; cat "$definition"; } > "$target"
if grep -q FAIL_HALF_WAY "$definition"; then echo "FATAL:   While running %post: exit status 1" >&2; exit 255; fi
echo "INFO:    Build complete: $target"
"""

ROOT = """\
{#- lute-image
description: A root image
-#}
Bootstrap: debootstrap
OSVersion: {{ images.debian_release }}
MirrorURL: {{ images.debian_mirror }}

%post
    echo root {{ marker | default("v1") }}
"""

LEAF = """\
{#- lute-image
description: A leaf image
parent: root
-#}
Bootstrap: localimage
From: {{ parent_sif }}

%post
    echo leaf
"""

FAR = """\
{#- lute-image
description: An image only another site builds
parent: root
sites: [elsewhere]
site_note: "its sources are only reachable there"
-#}
Bootstrap: localimage
From: {{ parent_sif }}
"""


def install_fake_apptainer(folder: Path, env: Dict[str, str]) -> Path:
    """Write the fake apptainer into ``folder`` and return the log of its calls."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "apptainer"
    script.write_text(FAKE_APPTAINER)
    script.chmod(0o755)
    log = folder / "calls.log"
    log.touch()
    env["PATH"] = f"{folder}{os.pathsep}{env.get('PATH', '')}"
    env["FAKE_APPTAINER_LOG"] = str(log)
    return log


def build_calls(log: Path) -> List[str]:
    """Return the fake's ``build`` calls, by the image named in the target."""
    calls = []
    for line in log.read_text().splitlines():
        if line.startswith("build "):
            target = Path(line.split()[-2]).name  # .<name>-<address16>.sif.tmp-<pid>
            calls.append(target.lstrip(".").split("-")[0])
    return calls


def write_recipes(folder: Path, recipes: Optional[Dict[str, str]] = None) -> Path:
    """Write recipe templates (default: root, leaf, far) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (recipes or {"root": ROOT, "leaf": LEAF, "far": FAR}).items():
        (folder / f"{name}.def.j2").write_text(textwrap.dedent(text))
    return folder


def make_paths(tmp: Path, images: str = "images") -> ImagePaths:
    return ImagePaths(recipes_dir=tmp / "recipes", images_dir=tmp / images, cache_dir=tmp / "cache")


def make_site(name: str = "local", **images: object) -> SiteProfile:
    return SiteProfile(name=name, images=ImageSettings.model_validate(images))


def fake_built_images(
    tmp: Path, images: Dict[str, Optional[Dict[str, object]]], *, run_from: str = "sif", **site: object
) -> SiteProfile:
    """Recipes, SIFs and a manifest for ``images`` (name -> its recipe's ``mpi:`` or None); a site that finds them.

    Nothing is built: each SIF is a small file recorded with its real size, mtime and sha256, so
    ``find_image`` (and the Apptainer runtime) take them for built images. With ``run_from="sandbox"``
    each also gets its unpacked folder, marked as made from that SIF.
    """
    import hashlib
    import json

    from lute_kernel.images.manifest import ImageRecord, record_image
    from lute_kernel.images.mpi import ImageMpi
    from lute_kernel.images.sandbox import MARKER, sandbox_for

    paths = make_paths(tmp)
    paths.recipes_dir.mkdir(parents=True, exist_ok=True)
    paths.cache_dir.mkdir(parents=True, exist_ok=True)
    for name, mpi in images.items():
        meta = f"description: fake {name}\n" + (f"mpi: {json.dumps(mpi)}\n" if mpi else "")
        (paths.recipes_dir / f"{name}.def.j2").write_text(f"{{#- lute-image\n{meta}-#}}\nBootstrap: scratch\n")
        sif = paths.cache_dir / f"{name}-{'0' * 16}.sif"
        sif.write_bytes(f"fake SIF {name}\n".encode())
        sha256 = hashlib.sha256(sif.read_bytes()).hexdigest()
        if run_from == "sandbox":
            sandbox_for(sif).mkdir(exist_ok=True)
            (sandbox_for(sif) / MARKER).write_text(sha256 + "\n")
        stat = sif.stat()
        record_image(
            paths,
            ImageRecord(
                name=name,
                recipe=str(paths.recipes_dir / f"{name}.def.j2"),
                address="0" * 64,
                sif=str(sif),
                sha256=sha256,
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                apptainer_version="apptainer version 0.0.0-fake",
                built_at="2026-11-22T00:00:00+00:00",
                build_seconds=0.0,
                site="local",
                mpi=ImageMpi.model_validate(mpi) if mpi else None,
            ),
        )
    settings = ImageSettings.model_validate(
        {"images_dir": str(paths.images_dir), "recipes_dir": str(paths.recipes_dir), "run_from": run_from}
    )
    return SiteProfile.model_validate({"name": "local", "images": settings, **site})
