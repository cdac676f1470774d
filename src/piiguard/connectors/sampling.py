"""Where a connector without a server-side random sample reads its sample: a few short runs.

The runs are **disjoint** (no record is read twice, so no value is counted twice) and **seeded by
the collection's name** (two scans of an unchanged collection read the same records, so a field is
typed the same on every run). The collection is cut into equal strata and each run starts at a
seeded offset inside its own stratum, ending before the next one begins.
"""

from __future__ import annotations

import random


def runs(size: int, n: int, parts: int, seed: str) -> list[tuple[int, int]]:
    """``(start, length)`` of at most ``parts`` disjoint runs over positions ``0 … size - 1`` that
    together hold ``min(n, size)`` positions, in ascending order, the same for the same arguments.
    When the runs would not fit their strata (a sample of most of the collection) it is one run from
    the start."""
    n = max(0, min(n, size))
    parts = max(1, min(parts, n))
    bounds = [i * size // parts for i in range(parts + 1)]
    lengths = [(i + 1) * n // parts - i * n // parts for i in range(parts)]
    if not n:
        return []
    if any(length > bounds[i + 1] - bounds[i] for i, length in enumerate(lengths)):
        return [(0, n)]
    rng = random.Random(f"piiguard-sample:{seed}")  # a str seed is hashed with SHA-512: stable across runs
    return [(rng.randint(bounds[i], bounds[i + 1] - length), length) for i, length in enumerate(lengths)]
