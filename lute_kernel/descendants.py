"""Every process a run starts dies with the run: the kernel is a child subreaper and sweeps orphans.

Owns making the kernel a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``), so a Task's
descendant that escapes its process group — ``setsid``, a double fork — is re-parented to the
kernel instead of init; the set of children the kernel started on purpose (``spawn`` registers
them); and the sweep at teardown that SIGKILLs and reaps every other child of the kernel that
belongs to the run (its environment carries the run's ``LUTE_RUN_ID``; one without the marker is
taken when no other run is active). Linux only; elsewhere these are no-ops. (Killing what runs
when the kernel itself dies is ``lute_kernel.deadman``'s job.)
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from typing import Callable, Dict, Optional, Set

from lute_kernel.procinfo import children_of, environ_value, stat_fields

RUN_ID_VARIABLE = "LUTE_RUN_ID"
"""Set in every run's environment: tells whose an orphan is when several runs share one kernel."""

_PR_SET_CHILD_SUBREAPER = 36
_SWEEP_ROUNDS = 20

_lock = threading.RLock()
"""Held while a child is spawned and registered, and while a sweep decides: a child just forked is
never mistaken for an orphan by a sweep in another thread."""
_known: Set[int] = set()
_active_runs: Dict[str, int] = {}
_prctl: Optional[Callable[..., int]] = None
_subreaper = False


def _load_prctl() -> Optional[Callable[..., int]]:
    global _prctl
    if _prctl is None:
        try:
            # The C library this interpreter already runs on (dlopen(NULL)): ctypes.util.find_library
            # would run `ldconfig -p` in a subprocess, ~3 ms of every run.
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            return None
    return _prctl


def become_subreaper() -> bool:
    """Make this process a child subreaper (once); return True when it is one."""
    global _subreaper
    if not _subreaper:
        prctl = _load_prctl()
        _subreaper = prctl is not None and prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _subreaper


def spawning() -> threading.RLock:
    """Return the lock a spawner holds from fork until ``started(pid)``."""
    return _lock


def started(pid: int) -> None:
    """Record a child the kernel started on purpose (not an orphan to sweep)."""
    with _lock:
        _known.add(pid)


def reaped(pid: int) -> None:
    """Forget a child once it has been waited for."""
    with _lock:
        _known.discard(pid)


def run_started(run_id: str, pid: int) -> None:
    """A run's main process is up: orphans without a marker are ambiguous while several runs are."""
    with _lock:
        _active_runs[run_id] = pid


def run_ended(run_id: str) -> None:
    """The run's main process is gone."""
    with _lock:
        _active_runs.pop(run_id, None)


def _subtree(pid: int) -> Set[int]:
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current in tree:
            continue
        tree.add(current)
        todo.extend(children_of(current))
    return tree


def _belongs(pid: int, run_id: str) -> bool:
    owner = environ_value(pid, RUN_ID_VARIABLE)
    if owner is not None:
        return owner == run_id
    with _lock:
        others = [r for r in _active_runs if r != run_id]
    return not others


def sweep(run_id: str) -> int:
    """SIGKILL and reap every orphan of the run re-parented to the kernel; return how many were killed."""
    me = os.getpid()
    killed = 0
    for _ in range(_SWEEP_ROUNDS):
        with _lock:
            orphans = [p for p in children_of(me) if p not in _known]
            mine = [p for p in orphans if _belongs(p, run_id) or _is_zombie(p)]
            if not mine:
                return killed
            for orphan in mine:
                for pid in _subtree(orphan):
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed += pid == orphan
                    except (ProcessLookupError, PermissionError):
                        pass
        for orphan in mine:
            try:
                os.waitpid(orphan, 0)  # re-parented to us: we reap it, or it stays a zombie
            except ChildProcessError:
                pass
    return killed


def _is_zombie(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] == "Z"
