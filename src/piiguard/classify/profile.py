"""Per-column features, kept as running counts while a field's batches are observed.

The learned column model (:mod:`piiguard.classify.column_model`) reads them; so may group rules.
Counts and histograms only — never a value: a :class:`Profile` can be logged, stored and explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from piiguard.registry import driver

if TYPE_CHECKING:
    import pyarrow as pa
else:
    pa = driver("pyarrow")


@dataclass
class Profile:
    """Running per-column features. :meth:`update` takes one batch's distinct values and their counts."""

    values: int = 0

    def update(self, uniques: pa.Array, weights: pa.Array) -> None:
        """Add one batch (distinct values, each weighted by how often it occurs)."""
        self.values += int(pa.compute.sum(weights).as_py() or 0)
