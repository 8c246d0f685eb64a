"""An XTC2 file written from scratch with psana's DgramEdit: a Configure naming the detectors, then dgrams.

Used by ``smd_runs.py`` inside the psana2 image. ``Writer`` owns the file, the output buffer and the
timestamps; ``fill`` sets a detector's fields for the next dgram. Test data only.
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
from psana.dgramedit import AlgDef, DetectorDef, DgramEdit
from psana.psexp import TransitionId

BUFSIZE = 8 * 1024 * 1024


class Writer:
    """One XTC2 file: a Configure with the given detectors, then transitions and events in order."""

    def __init__(self, path: str, detectors: Dict[str, Any], experiment: str, run: int) -> None:
        self.out = open(path, "wb")  # noqa: SIM115 - the writer owns the file until close()
        self.buf = bytearray(BUFSIZE)
        self.ts = 1_700_000_000 << 32
        self.config = DgramEdit(transition_id=TransitionId.Configure, ts=self.ts, bufsize=BUFSIZE)
        runinfo = self.config.Detector(
            DetectorDef("runinfo", "runinfo", ""),
            AlgDef("runinfo", 0, 0, 1),
            {"expt": (str, 1), "runnum": (np.uint32, 0)},
        )
        self.dets = {
            name: self.config.Detector(DetectorDef(name, dettype, f"{name}_0001"), AlgDef(alg, *version), fields)
            for name, (dettype, alg, version, fields) in detectors.items()
        }
        self._save(self.config)
        runinfo.runinfo.expt, runinfo.runinfo.runnum = experiment, run
        self.transition(TransitionId.BeginRun, [runinfo.runinfo])

    def _save(self, edit: Any) -> None:
        edit.save(self.buf)
        self.out.write(self.buf[: edit.size])

    def transition(self, tid: Any, data: List[Any] = ()) -> None:
        """Write one dgram; ``data`` are filled-in detector containers (det.<alg> with every field set)."""
        self.ts += 1 << 20  # ~0.24 ms apart, always increasing
        edit = DgramEdit(transition_id=tid, config_dgramedit=self.config, ts=self.ts, bufsize=BUFSIZE)
        for container in data:
            edit.adddata(container)
        self._save(edit)

    def fill(self, name: str, **values: Any) -> Any:
        """Return det.<alg> of ``name`` with its fields set."""
        det = self.dets[name]
        container = next(v for k, v in vars(det).items() if hasattr(v, "_det"))
        for key, value in values.items():
            setattr(container, key, value)
        return container

    def close(self) -> None:
        self.transition(TransitionId.EndRun)
        self.out.close()


def timing_values(xray: bool, laser: bool) -> Dict[str, Any]:
    """A timing record: code 137 fires with X-rays, code 89 when the laser shot is dropped."""
    bits = np.zeros(18, dtype=np.uint16)
    for code in ([137] if xray else []) + ([] if laser else [89]):
        bits[code >> 4] |= 1 << (code & 0xF)
    return {"sequenceValues": bits, "ebeamDestn": np.uint8(3)}
