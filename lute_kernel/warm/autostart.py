"""``LUTE_WARM=auto``: a command that found no warm kernel starts one for the commands after it.

Owns deciding that (``LUTE_WARM=auto`` and no server answered) and starting the server once the
command has done its work: an ``atexit`` hook (the lean ``run`` path runs those before it ends)
starts ``serve --detach`` with this very interpreter invocation (so the server's key is this
command's), unwaited, so the command's exit is not delayed and its own run never competes with the
server's imports. Stdlib only until the hook runs (it starts the server with
:func:`lute_kernel.spawn.start_command`, in a session of its own).
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Mapping, Optional

AUTO = "auto"


def wanted(env: Optional[Mapping[str, str]] = None) -> bool:
    """Return True when ``LUTE_WARM=auto`` asks for a server to be started when none serves."""
    return (os.environ if env is None else env).get("LUTE_WARM", "").strip().lower() == AUTO


def serve_command(orig_argv: List[str], argv: List[str], kind: str = "run") -> Optional[List[str]]:
    """Return the command line that starts a server for this invocation (``orig_argv`` with ``serve --detach``).

    ``orig_argv`` is the interpreter's own (options, then the script or ``-m module``, then the
    command's arguments, which are ``argv[1:]``); None when it does not end with them. ``kind``
    ``flows``: the server of ``flow run`` (``serve --flows``).
    """
    arguments = len(argv) - 1
    if arguments < 1 or len(orig_argv) <= arguments or orig_argv[len(orig_argv) - arguments :] != argv[1:]:
        return None
    flows = ["--flows"] if kind == "flows" else []
    return [sys.executable, *orig_argv[1 : len(orig_argv) - arguments], "serve", *flows, "--detach"]


def start_after_this_command(kind: str = "run") -> None:
    """Start a detached warm kernel of ``kind`` when this process exits (once)."""
    command = serve_command(list(sys.orig_argv), list(sys.argv), kind)
    if command is not None:
        atexit.register(_start, command)


def _start(command: List[str]) -> None:
    from lute_kernel.spawn import start_command

    try:
        # Its own session, none of our stdio: the command's pipes close when the command ends, and
        # `serve --detach` waits for its daemon to serve, then exits (init reaps it).
        start_command(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except Exception:  # an exit hook never fails the command: the next one runs cold and tries again
        pass


__all__ = ["AUTO", "serve_command", "start_after_this_command", "wanted"]
