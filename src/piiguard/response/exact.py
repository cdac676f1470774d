"""Exact subject matching, shared by every responder: a subject id arrives as text, and must match only a
value that *is* that id — never one a database's loose conversion makes equal to it.

- An integer column (or field) is matched only by canonical integer text: ``0`` or an optional ``-``
  and digits without a leading zero, ASCII, no spaces, sign games (``+7``, ``-0``) or exponent, within
  the column's range. ``'7abc'``, ``'0042'``, ``'alice@x'`` match no integer (MariaDB would turn them into
  7, 42 and 0; PostgreSQL ``'0042'::int`` is 42); the SQL dialects send them as integers only.
- A ``uuid`` column is matched by a UUID's canonical text in either case (``A0EEBC99-…`` is the same id
  as ``a0eebc99-…``); any other subject can match no row and is not sent (it would fail the batch's cast).
- A text column is compared byte for byte (no case folding, accent folding or trailing-space padding of
  a ``_ci`` or PAD SPACE collation); see :mod:`piiguard.response.dialects` for how each engine does it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_CANONICAL = re.compile(r"0|-?[1-9][0-9]*", re.ASCII)

# SQL integer type → bits (MariaDB/MySQL names and PostgreSQL's format_type names)
INTEGER_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}


def integer(value: object, bits: int = 64, unsigned: bool = False) -> int | None:
    """The integer ``value`` spells canonically within the range, else None. An ``int`` (a value read
    back from the database, e.g. a primary key) is taken as it is, if in range."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and len(value) <= 21 and _CANONICAL.fullmatch(value):
        number = int(value)
    else:
        return None
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return number if low <= number <= high else None


def integers(values: Iterable[object], bits: int = 64, unsigned: bool = False) -> list[int]:
    """The values that are canonical integers in range, as integers (the others can match no row)."""
    return [n for n in (integer(v, bits, unsigned) for v in values) if n is not None]


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)


def uuids(values: Iterable[object]) -> list[str]:
    """The values that spell a UUID canonically (hyphenated, either case), lower-cased; the others can
    match no ``uuid`` row."""
    return [v.lower() for v in values if isinstance(v, str) and _UUID.fullmatch(v.lower())]
