"""``python -m lute_kernel.rank_env CMD…``: hand one MPI rank's launcher variables into its container.

Each rank of an srun/mpirun step gets its own ``PMI_RANK``, ``PMI_FD``, ``SLURM_PROCID``…; Apptainer's
``--cleanenv`` drops them, and argv cannot carry per-rank values (no shell strings). This shim runs
per rank, outside the container: it copies those variables to ``APPTAINERENV_<name>`` (which
Apptainer sets inside even with ``--cleanenv``) and execs ``CMD``. Nothing else crosses.
Standard library only; it replaces itself, so it adds one short interpreter start per rank.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from typing import Dict, List, Mapping

RANK_PATTERNS = ("PMI_*", "PMIX_*", "SLURM_*", "OMPI_*", "MPIR_*", "HYDRA_*", "UCX_*", "MPI_LOCALRANKID")


def container_env(env: Mapping[str, str]) -> Dict[str, str]:
    """Return ``env`` plus ``APPTAINERENV_<name>`` for each launcher variable in it."""
    extra = {
        f"APPTAINERENV_{name}": value
        for name, value in env.items()
        if any(fnmatch.fnmatchcase(name, p) for p in RANK_PATTERNS)
    }
    return {**env, **extra}


def main(argv: List[str]) -> int:
    """Exec ``argv`` with the rank's variables passed on; return only on failure."""
    if not argv:
        print("usage: python -m lute_kernel.rank_env CMD [ARGS…]", file=sys.stderr)
        return 2
    try:
        os.execvpe(argv[0], argv, container_env(os.environ))
    except OSError as exc:
        print(f"lute_kernel.rank_env: cannot run {argv[0]!r}: {exc}", file=sys.stderr)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
