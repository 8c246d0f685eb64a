"""Matching MPI ranks with their launcher: which PMI plugin wires up the ranks of an image's MPI.

Owns the rule both MPI launchers apply to containerised ranks: the first PMI interface the image's
MPI speaks (its recipe's ``mpi:``, see ``lute_kernel.images.mpi``) that the launcher serves. Ranks
whose MPI speaks nothing the launcher serves each start alone as rank 0 of a world of one, so that
is an ``InputError`` before launch, never a silent serial run. Pure; imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

from lute_kernel.errors import InputError
from lute_kernel.runtimes.base import Runtime

if TYPE_CHECKING:
    from lute_kernel.plan import ProcessSpec


def serves(plugin: str, interface: str) -> bool:
    """Return whether the srun MPI plugin ``plugin`` serves ranks that speak ``interface``.

    Plugin names are Slurm's (``srun --mpi=list``): ``pmi2``, and ``pmix`` or a versioned
    ``pmix_v4``. ``pmi1`` has no srun plugin of its own (Slurm serves it only through its
    ``libpmi``, which an image's MPI is not linked against), so only a launcher that lists it
    serves it (MPICH's Hydra does).
    """
    if interface == "pmix":
        return plugin == "pmix" or plugin.startswith("pmix_")
    return plugin == interface


def choose_plugin(interfaces: Sequence[str], served: Sequence[str]) -> Optional[str]:
    """Return the served plugin for the first of ``interfaces`` that any served plugin serves, else None."""
    for interface in interfaces:
        for plugin in served:
            if serves(plugin, interface):
                return plugin
    return None


def image_pmi(spec: ProcessSpec, runtime: Runtime, served: Sequence[str], *, served_by: str) -> Optional[str]:
    """Return the plugin in ``served`` that wires up the image's ranks (None: the host's MPI, or one rank).

    Raises:
        InputError: Several ranks, and the image's MPI speaks nothing in ``served`` (or it has no MPI).
    """
    interfaces = runtime.mpi_interfaces(spec)
    if interfaces is None:  # the host's MPI: the site names its interface
        return None
    plugin = choose_plugin(interfaces, served)
    ranks = spec.resources.ranks
    if plugin is not None or ranks <= 1:  # one rank needs no wire-up
        return plugin
    image = runtime.image_name(spec)
    if not interfaces:
        raise InputError(
            f"image {image!r} carries no MPI (its recipe's lute-image block declares no `mpi:`), so {ranks} ranks"
            " would each run alone as rank 0: run the Task on one rank, or in an image with MPI"
        )
    raise InputError(
        f"image {image!r} speaks PMI {', '.join(interfaces)}, and {served_by} serves {', '.join(served) or 'none'}:"
        f" its {ranks} ranks would not wire up (each would run alone as rank 0). Use an image whose MPI speaks"
        " one of those, or add a plugin it speaks to the site profile if the site's Slurm has one"
    )
