"""What this host knows of its processes: alive or not, and since when (``/proc``).

A session registered from this host is judged by its process: the pid, and the start time
recorded at registration (``/proc/<pid>/stat`` field 22), so a reused pid keeps nothing alive.
"""

from __future__ import annotations

import os

__all__ = ["local_process_alive", "process_start_time"]


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` from field 3 (state) on, or None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return raw[raw.rfind(")") + 1 :].split()  # the command name may hold spaces and ')'


def process_start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (``/proc/<pid>/stat`` field 22, clock ticks after
    boot), or None where there is no ``/proc`` or no such process."""
    fields = _proc_stat(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        return int(fields[19])
    except ValueError:
        return None


def local_process_alive(pid: int, start: int | None) -> bool | None:
    """Whether the process that registered a session on this host still runs.

    True: ``pid`` runs (stopped or busy alike) with the start time ``start``. False: no such
    process, a zombie, or another process that reused the pid. None: cannot tell (no start
    time recorded or readable) while some process has the pid.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        pass
    except OSError:
        return None
    fields = _proc_stat(pid)
    if fields is None:
        return None
    if fields and fields[0] in ("Z", "X"):  # exited, not reaped yet
        return False
    current = process_start_time(pid)
    if start is None or current is None:
        return None
    return current == start
