"""The peak-finding loop shared by FindPeaksSFX (psana2) and FindPeaksPyAlgos (psana1).

Owns what every rank does with its events (find peaks, write hits to its CXI file, keep the hit and
miss powders) and what rank 0 does at the end (master CXI file, ``peakfinding<tag>.summary``, the
``.lst`` file that IndexCrystFEL reads, the summary with peaks per event). The event source and the
finder factory come from the caller, so the same loop serves both psana generations. Imported inside
the image only. Must not open data sources itself.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

from ._sfx_cxi import CxiWriter, Hit, rank_file, write_master
from ._sfx_finders import count, slab

FinderFactory = Callable[[Any, Any, Any], Callable[[Any], Any]]  # (params, mask, shape) -> per-event finder


def upstream_tag(tag: str) -> str:
    """Return the tag as upstream puts it in file names: ``""`` or ``"_<tag>"``."""
    return f"_{tag}" if tag and not tag.startswith("_") else tag


def first_mask(params: Any, shape: Any, psana_mask: Optional[Any]) -> Any:
    """Return the good-pixel mask (1 = use): psana's when asked, times the mask file's when given."""
    import numpy as np

    mask = np.ones(shape, dtype=np.uint8)
    if params.psana_mask and psana_mask is not None:
        mask = np.asarray(psana_mask, dtype=np.uint8).reshape(shape)
    if params.mask_file:
        import h5py

        with h5py.File(params.mask_file, "r") as handle:
            loaded = handle["entry_1/data_1/mask"][()]
        mask = mask * np.asarray(loaded, dtype=np.uint8).reshape(shape)
    return mask


def find_peaks(task: Any, events: Iterable[Any], make_finder: FinderFactory, rank: int, size: int, comm: Any) -> None:
    """Run the loop on this rank's events; on rank 0 write the master, summary and list files."""
    import numpy as np

    params = task.params
    tag = upstream_tag(params.tag)
    exp, run = str(params.lute_config.experiment), int(params.lute_config.run)
    writer: Optional[CxiWriter] = None
    finder: Optional[Callable[[Any], Any]] = None
    mask = powder_hits = powder_misses = None
    per_event: List[int] = []
    hits = empty = 0
    start = time.monotonic()
    for event in events:
        if event.data is None:
            empty += 1
            continue
        image = event.data
        if finder is None:
            mask = first_mask(params, image.shape, getattr(event, "mask", None))
            finder = make_finder(params, mask, image.shape)
            slab_shape = slab(image).shape
            writer = CxiWriter(rank_file(params.outdir, exp, run, rank, tag), slab_shape, image.shape, params)
            powder_hits, powder_misses = np.zeros(slab_shape), np.zeros(slab_shape)
        peaks = finder(image)
        found = count(peaks)
        per_event.append(found)
        if params.min_peaks <= found <= params.max_peaks:
            assert writer is not None
            writer.write(
                Hit(
                    slab(image),
                    peaks,
                    event.seconds,
                    event.nanoseconds,
                    event.fiducial,
                    event.photon_energy,
                    event.clen,
                )
            )
            hits += 1
        if found >= params.min_peaks:
            powder_hits = np.maximum(powder_hits, slab(image))
        else:
            powder_misses = np.maximum(powder_misses, slab(image))
        if len(per_event) % 100 == 0:
            task.progress(len(per_event), params.n_events or None, f"rank {rank}: {len(per_event)} events, {hits} hits")
    if empty:
        task.log.warning("rank %d: %d events had no %s data", rank, empty, params.det_name)
    if writer is not None:
        writer.close(powder_hits, powder_misses, mask)
    mine = {"hits": hits, "per_event": per_event}
    gathered = comm.gather(mine, root=0) if comm is not None else [mine]
    summary: Optional[Dict[str, str]] = None
    if rank == 0:
        hits_per_rank = [part["hits"] for part in gathered]
        all_events = [n for part in gathered for n in part["per_event"]]
        summary = _finish(params, exp, run, tag, hits_per_rank, all_events, time.monotonic() - start)
        task.log.info("%s events, %s hits -> %s", len(all_events), sum(hits_per_rank), params.out_file)
    if comm is not None:
        summary = comm.bcast(summary, root=0)
    task.result.summary = summary
    task.result.payload = params.out_file


def _finish(
    params: Any, exp: str, run: int, tag: str, hits_per_rank: List[int], per_event: List[int], seconds: float
) -> Dict[str, str]:
    import numpy as np

    if not per_event:
        raise RuntimeError(f"no event of run {run} held {params.det_name!r} data")
    master = write_master(params.outdir, exp, run, tag, hits_per_rank)
    total_hits = sum(hits_per_rank)
    counts = np.asarray(per_event)
    summary = {
        "Number of events processed": str(len(per_event)),
        "Number of hits found": str(total_hits),
        "Fractional hit rate": f"{total_hits / len(per_event):.2f}",
        "Peaks per event (mean)": f"{counts.mean():.1f}",
        "Peaks per event (min/median/max)": f"{counts.min()}/{np.median(counts):g}/{counts.max()}",
    }
    with open(os.path.join(params.outdir, f"peakfinding{tag}.summary"), "w") as handle:
        for key in ("Number of events processed", "Number of hits found", "Fractional hit rate"):
            print(f"{key}: {summary[key]}", file=handle)
        print(f"No. hits per rank: {hits_per_rank}", file=handle)
        print(f"Peaks per event: {per_event}", file=handle)
        print(f"Seconds: {seconds:.2f}", file=handle)
    os.makedirs(os.path.dirname(params.out_file) or ".", exist_ok=True)
    with open(params.out_file, "w") as handle:  # CrystFEL's input list: the master file
        print(master, file=handle)
    return summary
