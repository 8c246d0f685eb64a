"""AnalyzeSmallDataXSS, AnalyzeSmallDataXAS, AnalyzeSmallDataXES: upstream's small-data summaries.

Owns the three Task declarations (upstream managed Tasks ``SmallDataXSSAnalyzer``,
``SmallDataXASAnalyzer``, ``SmallDataXESAnalyzer``, run with MPI): their parameters are upstream's
(``tasks/_smd_analysis_params.py``; an empty ``smd_path`` is SubmitSMD's file for the run), their
work is ``tasks/_smd_analyzers.py`` on every rank over its share of the events. Rank 0 writes PNG
figures next to the HDF5 file and reports the numbers; every rank returns rank 0's result. Runs in
the psana2 image; h5py, numpy, mpi4py and matplotlib are imported inside ``run()``.
"""

from __future__ import annotations

from typing import Any, Callable

from lute_kernel.task import Task

from ._smd_analysis_params import (
    AnalyzeSmallDataXASParameters,
    AnalyzeSmallDataXESParameters,
    AnalyzeSmallDataXSSParameters,
)


class _SmallDataAnalyzer(Task):
    """Shared run(): one analysis on every rank, rank 0's summary and payload on all of them."""

    image = "psana2"
    mpi = True

    def analysis(self) -> Callable[[Any, Any], Any]:
        """Return the function of ``_smd_analyzers`` this Task runs."""
        raise NotImplementedError

    def run(self) -> None:
        """Run the analysis over this rank's events; rank 0 reports."""
        from ._smd_mpi import World

        world = World()
        outcome = world.bcast(self.analysis()(self.params, world))
        summary, payload = outcome
        self.log.info("%s: %s", type(self).__name__, summary)
        self.result.summary, self.result.payload = summary, payload


class AnalyzeSmallDataXSS(_SmallDataAnalyzer):
    """Difference scattering (laser on - off) of a small-data file by scan bin: the ring and the overlap."""

    aliases = ("SmallDataXSSAnalyzer",)
    Parameters = AnalyzeSmallDataXSSParameters

    def analysis(self) -> Callable[[Any, Any], Any]:
        """The XSS analysis."""
        from ._smd_analyzers import analyze_xss

        return analyze_xss


class AnalyzeSmallDataXAS(_SmallDataAnalyzer):
    """Difference absorption of a small-data file by CCM energy: spectra laser on/off and their edges."""

    aliases = ("SmallDataXASAnalyzer",)
    Parameters = AnalyzeSmallDataXASParameters

    def analysis(self) -> Callable[[Any, Any], Any]:
        """The XAS analysis."""
        from ._smd_analyzers import analyze_xas

        return analyze_xas


class AnalyzeSmallDataXES(_SmallDataAnalyzer):
    """Difference emission of a small-data file from spectrometer projections: lines laser on/off."""

    aliases = ("SmallDataXESAnalyzer",)
    Parameters = AnalyzeSmallDataXESParameters

    def analysis(self) -> Callable[[Any, Any], Any]:
        """The XES analysis."""
        from ._smd_analyzers import analyze_xes

        return analyze_xes
