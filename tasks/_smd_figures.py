"""PNG figures of the small-data analyzers, written next to the HDF5 file they came from.

Owns the drawing (matplotlib, Agg backend, no display): upstream LUTE posts holoviews/panel tabs to
the eLog; until the kernel has a figure mechanism these files are the figures, and their paths go in
the result payload. Each function returns the paths it wrote. Runs on rank 0 in the psana2 image; it
must not compute results.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path


def xss_figures(
    prefix: str,
    q: Any,
    laser_on: Any,
    laser_off: Any,
    bins: Any,
    diff: Any,
    trace: Any,
    scan_name: str,
    t0: Optional[float],
    tjumps: Dict[int, Any],
) -> List[str]:
    """Laser on/off profiles, the difference by scan bin, and the ring's trace along the scan."""
    plt = _pyplot()
    paths: List[str] = []
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    top.plot(q, laser_off, label="laser off")
    top.plot(q, laser_on, label="laser on")
    top.set_ylabel("normalised S(q)")
    top.legend()
    colours = plt.cm.viridis(np.linspace(0, 1, max(diff.shape[1], 1)))
    for i in range(diff.shape[1]):
        bottom.plot(q, diff[:, i], color=colours[i], label=f"{scan_name} = {bins[i]:.3g}")
    for code, values in tjumps.items():
        bottom.plot(q, values, "--", label=f"code {code} - laser off")
    bottom.set_xlabel("q (1/Å)")
    bottom.set_ylabel("ΔS (on - off)")
    if diff.shape[1] <= 10:
        bottom.legend(fontsize=7)
    paths.append(_save(fig, f"{prefix}_XSS_difference.png"))
    if diff.shape[1] > 1:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        image = left.pcolormesh(bins, q, diff, shading="nearest", cmap="RdBu_r")
        fig.colorbar(image, ax=left, label="ΔS")
        left.set_xlabel(scan_name)
        left.set_ylabel("q (1/Å)")
        right.plot(bins, trace, "o-")
        if t0 is not None:
            right.axvline(t0, color="k", linestyle="--", label=f"half rise {t0:.3g}")
            right.legend()
        right.set_xlabel(scan_name)
        right.set_ylabel("ΔS at the ring")
        paths.append(_save(fig, f"{prefix}_XSS_scan.png"))
    return paths


def xas_figures(
    prefix: str, energies: Any, laser_on: Any, laser_off: Any, edge_on: float, edge_off: float
) -> List[str]:
    """Absorption spectra laser on and off, their difference and the edges found."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    top.plot(energies, laser_off, "o-", label=f"laser off (edge {edge_off:.2f} eV)")
    top.plot(energies, laser_on, "o-", label=f"laser on (edge {edge_on:.2f} eV)")
    for edge in (edge_off, edge_on):
        top.axvline(edge, color="grey", linestyle=":")
    top.set_ylabel("normalised absorption")
    top.legend()
    bottom.plot(energies, laser_on - laser_off, "o-", color="C3")
    bottom.set_xlabel("CCM energy (eV)")
    bottom.set_ylabel("Δ (on - off)")
    return [_save(fig, f"{prefix}_XAS_spectrum.png")]


def xes_figures(
    prefix: str, pixels: Any, laser_on: Any, laser_off: Any, bins: Any, diff: Any, scan_name: str
) -> List[str]:
    """Emission spectra laser on and off, and the difference by scan bin."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    top.plot(pixels, laser_off, label="laser off")
    top.plot(pixels, laser_on, label="laser on")
    top.set_ylabel("emission (ADU)")
    top.legend()
    colours = plt.cm.viridis(np.linspace(0, 1, max(diff.shape[1], 1)))
    for i in range(diff.shape[1]):
        bottom.plot(pixels, diff[:, i], color=colours[i], label=f"{scan_name} = {bins[i]:.3g}")
    bottom.set_xlabel("pixel along the dispersion")
    bottom.set_ylabel("Δ / I0 (on - off)")
    if diff.shape[1] <= 10:
        bottom.legend(fontsize=7)
    return [_save(fig, f"{prefix}_XES_spectra.png")]
