"""Who owns a run (a scan or a copy): the host, the process id and that process's start time.

A scan or copy killed with SIGKILL (or by an out-of-memory killer, or a power cut) cannot record
its own end. Every run therefore records its owner when it starts, and opening the catalog marks
``interrupted`` the runs whose owner, on this host, is no longer alive. The start time is part of
the owner because process ids are reused: a new process that happens to get the old pid is not
the owner. Runs owned by another host are left as they are (this host cannot see its processes).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class RunStatus(StrEnum):
    """The life of a scan (``running`` → ``finished``) or a copy (``writing`` → ``active``)."""

    RUNNING = "running"
    WRITING = "writing"
    FINISHED = "finished"
    ACTIVE = "active"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    REPLACED = "replaced"
    REMOVED = "removed"


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: str  # the process's start time as the kernel counts it; "" where it cannot be read

    def alive(self) -> bool:
        """Whether this owner is a living process of this host (a different host: assumed alive)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, owned by another user
        return not self.started or process_started(self.pid) == self.started


def process_started(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22), or ""."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # the command name (field 2) is in parentheses and may itself hold spaces or parentheses
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19] if len(fields) > 19 else ""


def current() -> Owner:
    """The owner of runs started by this process."""
    return Owner(socket.gethostname(), os.getpid(), process_started(os.getpid()))
