"""flock-based leases on files that disappear when nobody holds them.

A lock file left behind is litter on a shared machine; removing one is safe only if a
process that opened it just before the removal notices: after locking, `take` checks that
the path still names the file it locked, and starts over if not.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from framework.errors import ConfigError


def wait_bound(variable: str, default: float) -> float:
    """How long to wait for a lock: the environment `variable` in seconds, else `default`.

    Raises:
        ConfigError: the variable is set but not a number of seconds.
    """
    value = os.environ.get(variable, "").strip()
    try:
        return float(value) if value else default
    except ValueError:
        raise ConfigError(f"{variable}={value!r}: expected a number of seconds") from None


def take(path: Path, *, shared: bool = False) -> int | None:
    """Lock `path` (created if missing) without waiting; the fd, or None if it is held."""
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the directory too goes with its last lock
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # removed or replaced by its last holder meanwhile: lock the new one


def give_back(fd: int, path: Path) -> None:
    """Unlock; remove the file if no other process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except BlockingIOError:
        pass  # another holder (shared): the file stays for it
    finally:
        os.close(fd)
