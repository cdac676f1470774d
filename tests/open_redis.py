"""An open Redis on a loopback host of its own, for the discovery tests: what someone left open."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from servers import missing

HOST = "127.0.0.5"  # a free loopback host of its own: nothing else of the suite listens there


def port_on(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def until(condition: Callable[[], Any], seconds: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s")


class OpenRedis:
    """A Redis with no password on ``HOST`` (protected mode off): what someone left open."""

    def __init__(self, port: int) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("Redis (Debian package redis-server)")
        self.root = Path(tempfile.mkdtemp(prefix="piiguard-open-redis-", dir="/tmp"))
        self.port = port
        self.proc = subprocess.Popen([str(binary), "--port", str(port), "--bind", HOST, "--save", "",
                                      "--appendonly", "no", "--dir", str(self.root), "--protected-mode", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until(self.listening, 15, "Redis listening")

    def listening(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
