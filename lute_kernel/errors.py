"""Errors the kernel raises for bad input, and the exit codes they map to.

Owns the split between *input* errors (the user's config or command line is wrong: exit 2,
nothing launched, nothing written) and everything else. Must not format output for a terminal:
the CLI decides how to show these.
"""

from __future__ import annotations

from typing import Optional

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_BAD_INPUT = 2


class LuteError(Exception):
    """Base class of every error the kernel raises on purpose."""


class InputError(LuteError):
    """The user's input is wrong; nothing was launched and nothing was written."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(InputError):
    """A configuration file cannot be read, parsed or substituted.

    Args:
        message: What is wrong, in one sentence.
        path: The configuration file, when known.
        key: Dotted key inside the file (``Section.param``), when known.
        line: 1-based line number in the file, when YAML can tell it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Optional[str] = None,
        key: Optional[str] = None,
        line: Optional[int] = None,
    ) -> None:
        self.message = message
        self.path = path
        self.key = key
        self.line = line
        super().__init__(self.describe())

    def describe(self) -> str:
        """Return ``file:line: key: message`` with the parts that are known."""
        where = ""
        if self.path:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
        parts = [p for p in (where, self.key) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class UnknownTaskError(InputError):
    """No Task (or alias) of that name is registered."""


class ParameterError(InputError):
    """A Task section failed validation; the message names every bad field."""


class WorkDirError(InputError):
    """The header's work_dir is missing, does not exist, or is not writable."""


class LaunchError(LuteError):
    """The plan could not be started (missing interpreter, socket path too long, …)."""


class ProtocolError(LuteError):
    """A peer sent a frame that is not valid lute-kernel IPC."""


class MessageTooLarge(ProtocolError):
    """A message is larger than the configured size cap."""


class DatabaseError(LuteError):
    """The run database cannot be opened, read or written (locked too long, corrupt, full disk…)."""
