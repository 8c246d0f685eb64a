"""Raw sbatch options, as upstream passes them: ``lute-kernel submit TASK -c CFG -- --ntasks=5 -p milano``.

Owns reading a list of sbatch arguments — a DAG node's ``slurm_params`` split with ``shlex``, or
what follows ``--`` on the command line — without rewriting it: the arguments go to sbatch as
given, on its command line (where they win over the script's ``#SBATCH`` lines, and a later
occurrence wins over an earlier one). The kernel only reads the few options it must know to plan
the job (tasks, nodes, tasks per node, CPUs per task, partition, account, time) and refuses the
ones it sets itself (``--output``/``--error``: it follows the job's output; ``--wrap``,
``--parsable``, ``--wait``, ``--test-only``). Pure.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

from lute_kernel.errors import InputError

# sbatch's short options that take a value (`-n 5` or `-n5`); every other short option is a flag.
_SHORT_WITH_VALUE = frozenset("AabCcDdeFGiJLMmNnopqSTtwx")
_SHORT_NAMES = {
    "A": "account",
    "c": "cpus-per-task",
    "e": "error",
    "J": "job-name",
    "N": "nodes",
    "n": "ntasks",
    "o": "output",
    "p": "partition",
    "t": "time",
    "W": "wait",
}
# Long options that never take a value, and those whose value is optional (only with `=`).
_LONG_FLAGS = frozenset(
    {
        "contiguous",
        "disable-stdout-job-summary",
        "exact",
        "hold",
        "ignore-pbs",
        "no-kill",
        "no-requeue",
        "overcommit",
        "oversubscribe",
        "parsable",
        "quiet",
        "reboot",
        "requeue",
        "spread-job",
        "test-only",
        "use-min-nodes",
        "verbose",
        "wait",
        "help",
        "usage",
        "version",
    }
)
_LONG_OPTIONAL_VALUE = frozenset({"exclusive", "get-user-env", "propagate", "immediate", "kill-on-invalid-dep"})
REFUSED = {
    "output": "lute-kernel writes the job's output to <work_dir>/.lute/slurm/ and follows it",
    "error": "lute-kernel keeps the job's stderr with its output, which it follows",
    "wrap": "the job runs `lute-kernel run`; there is no other command to wrap",
    "parsable": "lute-kernel reads sbatch's answer itself",
    "wait": "use `lute-kernel submit --wait`, which follows the job and shows its output",
    "test-only": "use `lute-kernel submit --dry-run`",
    "help": "not a job option",
    "usage": "not a job option",
    "version": "not a job option",
}
_NODES = re.compile(r"(\d+)(?:-(\d+))?")


@dataclass(frozen=True)
class SbatchArgs:
    """Raw sbatch arguments and what the kernel reads from them (None: not given)."""

    args: Tuple[str, ...] = ()
    ntasks: Optional[int] = None
    nodes: Optional[int] = None
    """The minimum of ``--nodes=MIN[-MAX]``."""
    ntasks_per_node: Optional[int] = None
    cpus_per_task: Optional[int] = None
    partition: Optional[str] = None
    account: Optional[str] = None
    time: Optional[str] = None
    job_name: Optional[str] = None
    options: Tuple[Tuple[str, Optional[str]], ...] = field(default=(), repr=False)
    """Every option read, in order: ``(long name or -X, value)``."""

    def task_count(self) -> Optional[int]:
        """Return the job's number of tasks as Slurm will allocate it, when these options decide it."""
        if self.ntasks is not None:
            return self.ntasks
        if self.ntasks_per_node is not None:
            return self.ntasks_per_node * (self.nodes or 1)
        return None

    def __bool__(self) -> bool:
        return bool(self.args)


def split_slurm_params(text: str) -> List[str]:
    """Split a DAG node's ``slurm_params`` string as a shell would (quotes, backslashes); no expansion."""
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise InputError(f"cannot split {text!r} into sbatch options: {exc}") from None


def _tokens(args: Sequence[str]) -> List[Tuple[str, Optional[str]]]:
    """Group ``args`` into ``(option, value)`` pairs; raise InputError for a value-less option or a stray word."""
    pairs: List[Tuple[str, Optional[str]]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if eq:
                pairs.append((name, value))
            elif name in _LONG_FLAGS or name in _LONG_OPTIONAL_VALUE:
                pairs.append((name, None))
            elif i < len(args):
                pairs.append((name, args[i]))
                i += 1
            else:
                raise InputError(f"sbatch option --{name} needs a value")
        elif arg.startswith("-") and len(arg) > 1 and arg[1] != "-":
            letter = arg[1]
            name = _SHORT_NAMES.get(letter, f"-{letter}")
            if letter not in _SHORT_WITH_VALUE:
                pairs.append((name, arg[2:] or None))
            elif len(arg) > 2:
                pairs.append((name, arg[2:]))
            elif i < len(args):
                pairs.append((name, args[i]))
                i += 1
            else:
                raise InputError(f"sbatch option -{letter} needs a value")
        else:
            raise InputError(f"{arg!r} is not an sbatch option (they start with '-')")
    return pairs


def _positive(name: str, value: Optional[str]) -> int:
    if value is None or not value.isdigit() or int(value) < 1:
        raise InputError(f"sbatch option --{name} must be a positive whole number, not {value!r}")
    return int(value)


def parse_sbatch_args(args: Sequence[str]) -> SbatchArgs:
    """Read raw sbatch arguments; raise InputError for malformed ones and for those the kernel sets itself."""
    pairs = _tokens(args)
    known: Dict[str, object] = {}
    for name, value in pairs:
        if name in REFUSED:
            raise InputError(f"sbatch option --{name} cannot be given here: {REFUSED[name]}")
        if name in ("ntasks", "ntasks-per-node", "cpus-per-task"):
            known[name.replace("-", "_")] = _positive(name, value)
        elif name == "nodes":
            match = _NODES.fullmatch(value or "")
            if not match or int(match.group(1)) < 1:
                raise InputError(f"sbatch option --nodes must be N or MIN-MAX, not {value!r}")
            known["nodes"] = int(match.group(1))
        elif name in ("partition", "account", "time", "job-name"):
            if not value:
                raise InputError(f"sbatch option --{name} needs a value")
            known[name.replace("-", "_")] = value
    return replace(SbatchArgs(args=tuple(args), options=tuple(pairs)), **known)  # type: ignore[arg-type]
