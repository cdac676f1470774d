"""What the benchmarks measure a step by: its wall time and the peak RSS seen while it ran."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """This process's resident set now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Step:
    """Wall time, the RSS when the step began and the peak seen while it ran (sampled every 20 ms)."""

    def __init__(self, name: str) -> None:
        self.name, self.seconds, self.start_rss, self.peak = name, 0.0, 0, 0

    @property
    def grew(self) -> int:
        return self.peak - self.start_rss


@contextmanager
def step(name: str, done: list[Step] | None = None) -> Iterator[Step]:
    s = Step(name)
    s.start_rss = s.peak = rss()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            s.peak = max(s.peak, rss())

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        yield s
    finally:
        s.seconds = time.monotonic() - started
        stop.set()
        watcher.join()
        s.peak = max(s.peak, rss())
        if done is not None:
            done.append(s)


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min; 2 cores)"
