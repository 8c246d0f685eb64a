"""The MPI an image carries: the ``mpi:`` entry of a recipe's metadata block.

Owns ``ImageMpi`` (the MPI flavour and the PMI interfaces it speaks, in its order of preference),
which the build records in the manifest and as SIF labels; the launchers match it with what the
site serves (``lute_kernel.launchers.pmi``). Pure data.

    {#- lute-image
    description: …
    mpi: {flavour: mpich, pmi: [pmi2, pmi1]}   # Debian's MPICH: PMI-2 and PMI-1, no PMIx
    -#}
"""

from __future__ import annotations

from typing import List, Literal

from pydantic import BaseModel, ConfigDict, Field

PmiInterface = Literal["pmi1", "pmi2", "pmix"]
"""Process-management interfaces an MPI library can speak to its launcher."""


class ImageMpi(BaseModel):
    """The MPI library in an image (``mpi:`` in the recipe's metadata; recorded in the build manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flavour: Literal["mpich", "openmpi", "mvapich", "intel-mpi", "cray-mpich"] = Field(
        ..., description="The MPI implementation (its family: MPICH derivatives speak PMI-1/PMI-2)."
    )
    pmi: List[PmiInterface] = Field(
        ...,
        min_length=1,
        description="The PMI interfaces its ranks speak to the launcher, preferred first (pmi1, pmi2, pmix).",
    )

    def describe(self) -> str:
        """Return ``mpich (pmi2, pmi1)``."""
        return f"{self.flavour} ({', '.join(self.pmi)})"
