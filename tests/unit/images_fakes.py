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
