"""Kernel file locks (``flock``): open a lock file, take a lock now or by a deadline, probe one."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

__all__ = ["flock_until", "lock_is_free", "open_lock", "try_flock"]


def open_lock(path: Path, *, create: bool = True) -> int:
    """A descriptor of the lock file ``path`` (created 0600 unless ``create=False``)."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    return os.open(path, flags, 0o600)


def try_flock(fd: int, operation: int) -> bool:
    """Take the lock now if it is free (``LOCK_SH`` or ``LOCK_EX``); False when it is not."""
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def flock_until(fd: int, operation: int, deadline: float) -> bool:
    """Take the lock, retrying until ``deadline`` (monotonic); False when it stayed taken."""
    while not try_flock(fd, operation):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def lock_is_free(path: Path) -> bool:
    """True when nobody holds ``path``'s lock (a missing file is a free lock)."""
    try:
        fd = open_lock(path, create=False)
    except FileNotFoundError:
        return True
    try:
        return try_flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)
