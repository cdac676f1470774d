"""Arrow types (Parquet's logical types, what Arrow infers from JSON Lines) as native types, and the
values of the kinds whose default text is not the canonical one rendered so.

- A timestamp is ISO 8601 with a ``T`` (Arrow writes a space). A timestamp Arrow *inferred* from JSON
  text whose every value of the batch is at midnight was a date written as one (``"1990-01-02"``:
  Arrow reads every ISO date as ``timestamp[s]``); it is rendered back as ``1990-01-02`` and typed
  ``DATE``, never ``1990-01-02 00:00:00``. Parquet's own timestamps stay timestamps: the writer said so.
- ``fixed_size_binary(16)`` and the ``arrow.uuid`` extension are UUIDs, rendered ``8-4-4-4-12``.
- CSV has no types: a text column whose every value of the batch is an ISO date (or date and time,
  all with a zone or all without) is typed ``DATE`` (``TIMESTAMP``), as Arrow would infer it; its
  text is left as written.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from piiguard.classify.types import Kind, NativeType
from piiguard.registry import driver

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # imported on first use: starting the CLI must not load every engine's driver
    pa = driver("pyarrow")
    pc = driver("pyarrow.compute")

PROBE = 64  # values of a CSV column tried before all of them


def kind(t: pa.DataType) -> Kind | None:
    """The piiguard kind of a scalar Arrow type; None for one that says nothing (null)."""
    checks = ((pa.types.is_boolean, Kind.BOOLEAN), (pa.types.is_integer, Kind.INTEGER),
              (pa.types.is_floating, Kind.FLOAT), (pa.types.is_decimal, Kind.DECIMAL),
              (pa.types.is_timestamp, Kind.TIMESTAMP), (pa.types.is_date, Kind.DATE), (pa.types.is_time, Kind.TIME),
              (pa.types.is_duration, Kind.INTERVAL), (pa.types.is_interval, Kind.INTERVAL),
              (_is_uuid, Kind.UUID), (_is_binary, Kind.BINARY), (_is_text, Kind.TEXT))
    return next((k for test, k in checks if test(t)), None)


def _is_uuid(t: pa.DataType) -> bool:
    return (pa.types.is_fixed_size_binary(t) and t.byte_width == 16) or (
        isinstance(t, pa.BaseExtensionType) and t.extension_name == "arrow.uuid")


def _is_binary(t: pa.DataType) -> bool:
    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
                or pa.types.is_binary_view(t))


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def native(t: pa.DataType, *, array: bool) -> NativeType | None:
    """A leaf's native type: Arrow's spelling, its kind (a dictionary's values' kind)."""
    found = kind(t.value_type if pa.types.is_dictionary(t) else t)
    return None if found is None else NativeType(str(t), found, array)


def timestamps(arr: pa.Array, *, inferred: bool) -> tuple[pa.Array, Kind]:
    """A timestamp column as ISO 8601 text, and its kind (``DATE`` for dates Arrow inferred as
    midnight timestamps)."""
    held = arr.drop_null()
    if inferred and arr.type.tz is None and len(held) and pc.all(
            pc.equal(pc.floor_temporal(held, unit="day"), held)).as_py():
        return pc.cast(pc.cast(arr, pa.date32()), pa.string()), Kind.DATE
    return pc.replace_substring(pc.cast(arr, pa.string()), " ", "T", max_replacements=1), Kind.TIMESTAMP


def uuids(arr: pa.Array) -> pa.Array:
    """16-byte values as canonical UUID text."""
    return pa.array([None if b is None else str(uuid.UUID(bytes=b)) for b in arr.cast(pa.binary()).to_pylist()],
                    pa.string())


# Arrow's own ISO 8601 parsers decide (a cast: 4-5 times faster than a regular expression); naive
# timestamps, then with a zone. A cast that fails is slow (0.2 s for 600,000 values): the whole column
# tries only what its first values passed, and what comes after it.
_TARGETS = ((Kind.DATE, None), (Kind.TIMESTAMP, None), (Kind.TIMESTAMP, "UTC"))


def text_kind(arr: pa.Array) -> Kind | None:
    """``DATE`` or ``TIMESTAMP`` for a text column whose every non-empty value is an ISO date (date and
    time), else None. The first :data:`PROBE` values are tried first: most columns fail there, and a
    full scan must not pay for parsing every value of every column."""
    found = _iso(arr.slice(0, PROBE), 0)
    if found is not None and len(arr) > PROBE:
        found = _iso(arr, found)
    return None if found is None else _TARGETS[found][0]


def _iso(arr: pa.Array, start: int) -> int | None:
    """The first of :data:`_TARGETS` from ``start`` on that every non-empty value parses as."""
    held = pc.filter(arr, pc.fill_null(pc.not_equal(arr, ""), False))
    if not len(held):
        return None
    for i in range(start, len(_TARGETS)):
        kind, zone = _TARGETS[i]
        try:
            held.cast(pa.date32() if kind is Kind.DATE else pa.timestamp("us", zone))
        except pa.ArrowException:
            continue
        return i
    return None
