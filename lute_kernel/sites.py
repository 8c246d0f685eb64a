"""Site profiles: where a site keeps things and how it launches (``config/sites/<name>.yaml``).

Owns the ``SiteProfile`` model (unknown keys are errors, so a typo in a profile is caught) and
finding/loading profiles. Paths and cluster defaults live in the YAML files, never in code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import List, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lute_kernel.errors import ConfigError

DEFAULT_SITE = "local"


class SiteProfile(BaseModel):
    """Settings of one site, validated; the same model documents every option."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    runtime: Literal["local", "apptainer"] = "local"
    launcher: Literal["direct"] = "direct"
    run_dir_root: Optional[str] = Field(
        None,
        description="Where per-run socket folders go (short path: unix sockets have a 107-byte limit).",
    )
    kill_grace_seconds: float = Field(10.0, ge=0, description="SIGTERM to SIGKILL grace period.")
    env_allowlist: List[str] = Field(
        default_factory=list,
        description="Extra host variables (names, or prefixes ending in '*') passed into Tasks.",
    )
    elog_url: Optional[str] = Field(None, description="eLog base URL; summaries are posted there as run parameters.")
    ipc_max_bytes: int = Field(1 << 30, gt=0, description="Cap on one IPC message.")

    def socket_root(self) -> Path:
        """Return the folder that holds run directories."""
        return Path(self.run_dir_root or tempfile.gettempdir())


def sites_dir() -> Path:
    """Return the folder of site profiles (``LUTE_SITES_DIR`` or the repo's ``config/sites``)."""
    override = os.environ.get("LUTE_SITES_DIR")
    return Path(override) if override else Path(__file__).resolve().parent.parent / "config" / "sites"


def available_sites() -> List[str]:
    """Return the names of the site profiles found."""
    return sorted(p.stem for p in sites_dir().glob("*.yaml"))


def load_site(name: Optional[str] = None) -> SiteProfile:
    """Load a site profile by name (default: ``LUTE_SITE`` or ``local``)."""
    name = name or os.environ.get("LUTE_SITE") or DEFAULT_SITE
    path = sites_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available_sites()) or "none"
        raise ConfigError(f"unknown site {name!r} (known: {known})", path=str(path))
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return SiteProfile.model_validate({"name": name, **data})
    except yaml.YAMLError as exc:
        raise ConfigError(f"site profile is not valid YAML: {exc}", path=str(path)) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid site profile: {problems}", path=str(path)) from None
