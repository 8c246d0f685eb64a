"""The garbage collector held off while ``lute-kernel run`` starts, and back on before any Task code runs.

Why: the kernel's start-up (imports, validation) allocates objects that live until the process
ends; the collector's ~60-80 young-generation passes over them find nothing to free and cost a
short run ~10 ms. The lean ``run`` path calls `hold` first thing; `release` (called once the
first Task is prepared, before its launch) freezes what start-up made — later collections skip
it, and a forked worker shares its pages — and turns the collector on again, so the Task and the
rest of the run collect as always. Must not leave the collector off past a launch.
"""

from __future__ import annotations

import gc

_held = False


def hold() -> None:
    """Turn the collector off for the start-up, if it was on."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def release() -> None:
    """Freeze start-up's objects and turn the collector on again (once; nothing when `hold` did nothing)."""
    global _held
    if _held:
        _held = False
        gc.freeze()
        gc.enable()
