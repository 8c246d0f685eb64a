"""Read a configuration file's text, bounded: only regular files, never more than the limit.

Owns the one place a configuration path is opened. A FIFO, ``/dev/zero``, a socket or a terminal
is refused from its ``stat`` before it is opened (opening some devices has effects, reading a
FIFO waits for a writer); a regular file larger than the limit is refused before it is read, and
a file that grows while being read (or under-reports its size, as ``/proc`` files do) is read up
to the limit plus one byte and then refused. Must not parse YAML.
"""

from __future__ import annotations

import os
import stat
from typing import List

from lute_kernel.config.limits import size_text
from lute_kernel.errors import ConfigError

_CHUNK = 1024 * 1024

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_config_text(path: str, max_bytes: int) -> str:
    """Return the UTF-8 text of the regular file at ``path``, at most ``max_bytes`` long.

    Args:
        path: The file (symbolic links are followed).
        max_bytes: The largest file accepted.

    Raises:
        ConfigError: The path is missing, unreadable, not a regular file, larger than
            ``max_bytes``, or not UTF-8.
    """
    try:
        _check_kind(os.stat(path), path)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except ConfigError:
        raise
    except (OSError, ValueError) as exc:
        raise _open_error(exc, path) from None
    try:
        # The path may have been swapped for a FIFO between stat and open: check what is open.
        info = os.fstat(fd)
        _check_kind(info, path)
        if info.st_size > max_bytes:
            raise _too_large(path, max_bytes, f" ({info.st_size:,} bytes)")
        data = _read_up_to(fd, max_bytes + 1)
    except OSError as exc:
        raise _open_error(exc, path) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise _too_large(path, max_bytes, "")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file is not UTF-8 text (byte {exc.start})", path=path) from None


def _check_kind(info: os.stat_result, path: str) -> None:
    if stat.S_ISREG(info.st_mode):
        return
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError("configuration path is a directory, not a file", path=path)
    kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
    raise ConfigError(f"configuration path is {kind}, not a regular file; refusing to read it", path=path)


def _read_up_to(fd: int, count: int) -> bytes:
    chunks: List[bytes] = []
    left = count
    while left > 0:
        chunk = os.read(fd, min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _too_large(path: str, max_bytes: int, actual: str) -> ConfigError:
    return ConfigError(
        f"configuration file is larger than {size_text(max_bytes)}{actual}; a LUTE configuration is a few KB",
        path=path,
    )


def _open_error(exc: BaseException, path: str) -> ConfigError:
    if isinstance(exc, FileNotFoundError):
        return ConfigError("configuration file not found", path=path)
    if isinstance(exc, IsADirectoryError):
        return ConfigError("configuration path is a directory, not a file", path=path)
    if isinstance(exc, PermissionError):
        return ConfigError("configuration file is not readable (permission denied)", path=path)
    if isinstance(exc, ValueError):  # a NUL in the path
        return ConfigError("configuration path is not a valid file name", path=path)
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ConfigError(f"configuration file cannot be read ({reason})", path=path)


__all__ = ["read_config_text"]
