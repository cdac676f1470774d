"""A Bloom filter over keyed digests: the set a copy fingerprint keeps instead of values.

Why a Bloom filter: it answers "was this value added?" with no false negatives, at a fixed false-match
rate, in a size that depends only on how many values it holds (about 2.4 MB per million people at a
1e-4 target, 24 MB at 10 million) — and it cannot be listed: the bits are positions of HMAC digests,
so nothing in them is a value or can be turned back into one without the key.

Sizing (the textbook optimum, Bloom 1970 / Broder & Mitzenmacher 2004): for ``n`` values and a target
false-match rate ``p``, ``m = ceil(-n · ln p / (ln 2)²)`` bits and ``k = round(m / n · ln 2)``
positions per value. Positions come from one digest by double hashing (Kirsch & Mitzenmacher 2006):
``h1`` and ``h2`` are the digest's first two 64-bit words, position ``i`` is ``(h1 + i · h2) mod m``;
that keeps the optimal rate asymptotically with one HMAC per value instead of ``k``.

The rate a *built* set really has is measured from its bits: a value not added hits ``k`` positions
that are set with probability ``fill`` each, so ``p = fill ** k`` (:meth:`Bloom.false_rate`). Matching
uses that, not the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

TARGET_RATE = 1e-4
MIN_CAPACITY = 1024
HEADROOM = 1.25  # the set is sized for a quarter more people than it was built from: it stays valid as
# the source grows a little, and the measured rate stays under the target


def sized(capacity: int, rate: float = TARGET_RATE) -> tuple[int, int]:
    """(bits, hashes) for ``capacity`` values at false-match rate ``rate``; bits are a multiple of 64."""
    n = max(int(capacity), 1)
    bits = math.ceil(-n * math.log(rate) / (math.log(2) ** 2))
    bits = (bits + 63) // 64 * 64
    hashes = max(1, round(bits / n * math.log(2)))
    return bits, hashes


def words(digests: bytes | np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The (h1, h2) 64-bit words of concatenated 32-byte digests (or an (n, 32) uint8 array)."""
    raw = np.frombuffer(digests, dtype=np.uint8) if isinstance(digests, bytes | bytearray) else digests
    view = np.ascontiguousarray(raw).reshape(-1, 32).view("<u8")
    return view[:, 0].copy(), view[:, 1] | np.uint64(1)  # h2 odd: never 0, so the k positions differ


@dataclass(frozen=True, eq=False)
class Bloom:
    """``bits`` bits (a uint8 array, little-endian bit order), ``hashes`` positions per value."""

    array: np.ndarray[Any, Any]
    bits: int
    hashes: int

    @classmethod
    def empty(cls, capacity: int, rate: float = TARGET_RATE) -> Bloom:
        bits, hashes = sized(max(capacity, MIN_CAPACITY), rate)
        return cls(np.zeros(bits // 8, dtype=np.uint8), bits, hashes)

    @classmethod
    def from_bytes(cls, data: bytes, hashes: int) -> Bloom:
        return cls(np.frombuffer(data, dtype=np.uint8).copy(), len(data) * 8, hashes)

    def to_bytes(self) -> bytes:
        return self.array.tobytes()

    def _positions(self, h1: np.ndarray[Any, Any], h2: np.ndarray[Any, Any], i: int) -> np.ndarray[Any, Any]:
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as double hashing intends
            return (h1 + np.uint64(i) * h2) % np.uint64(self.bits)

    def add(self, h1: np.ndarray[Any, Any], h2: np.ndarray[Any, Any]) -> None:
        """Set the values' positions. Through a byte-per-bit scratch array: plain fancy assignment
        instead of ``bitwise_or.at``, six times faster, at one byte per bit while it runs (30 MB of
        bits → 240 MB, only while building)."""
        flags = np.zeros(self.bits, dtype=bool)
        for i in range(self.hashes):
            flags[self._positions(h1, h2, i).astype(np.intp)] = True
        np.bitwise_or(self.array, np.packbits(flags, bitorder="little"), out=self.array)

    def contains(self, h1: np.ndarray[Any, Any], h2: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """A bool per value: True when every one of its positions is set (added, or a false match)."""
        found = np.ones(len(h1), dtype=bool)
        for i in range(self.hashes):
            pos = self._positions(h1, h2, i)
            byte = self.array[(pos >> np.uint64(3)).astype(np.intp)]
            found &= (byte >> (pos & np.uint64(7)).astype(np.uint8)) & np.uint8(1) == 1
        return found

    def fill(self) -> float:
        """The share of bits set."""
        return float(np.unpackbits(self.array).sum()) / self.bits

    def false_rate(self) -> float:
        """The chance that a value never added is taken for one, measured from the bits: ``fill ** k``."""
        return self.fill() ** self.hashes
