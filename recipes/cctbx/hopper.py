"""Stand-in for ``simtbx.command_line.hopper`` (diffBragg), which Debian bookworm does not ship.

``cctbx.xfel.merge``'s parameter definitions include ``simtbx.command_line.hopper.phil_scope`` for its
optional diffBragg step; an empty scope lets the merge program start (that step is not available
here). Installed as simtbx/command_line/hopper.py by recipes/cctbx.def.j2.
"""

from iotbx.phil import parse

phil_scope = parse("")
