"""Byte streams under the file readers: over-long lines dropped (and counted) before Arrow sees them,
JSON Lines cut into blocks of whole lines, and a tally of everything left out.

Arrow's CSV and JSON readers fail on a row longer than their block ("straddling object"), and after
that failure the rest of the file is lost. :class:`LineFilter` drops such lines first, so one
100 MB line costs one counted line, not the file. It holds at most :data:`MAX_LINE_BYTES` of a line.
"""

from __future__ import annotations

import io
import threading
from typing import Any

MAX_LINE_BYTES = 1 << 20  # a longer line is skipped and counted (values are cut to 4096 chars anyway)
CHUNK_BYTES = 1 << 20  # at most MAX_LINE_BYTES: then only the line a chunk starts in can be too long
LONG_LINES = f"line(s) longer than {MAX_LINE_BYTES >> 20} MiB"
BAD_BYTES = "byte sequence(s) not valid UTF-8"
_FFFD = "\ufffd".encode()


class Tally:
    """Counts of what a reader left out, by reason; :meth:`take` hands over what was added since."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # Arrow calls the CSV invalid-row handler from its own threads
        self._new: dict[str, int] = {}

    def add(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._new[reason] = self._new.get(reason, 0) + count

    def take(self) -> dict[str, int]:
        with self._lock:
            out, self._new = self._new, {}
        return out


class LineFilter(io.RawIOBase):
    """A readable stream of ``source``'s bytes without the lines longer than ``limit`` bytes.

    With ``text=True`` (CSV) it also writes each byte sequence that is not UTF-8 as U+FFFD, counted:
    Arrow's CSV reader decodes a ragged row to hand it to the invalid-row handler, and a bad byte
    there fails the whole file (with a traceback on stderr). It counts quote characters too, and
    the lines after the last one, so that a quote left open at the end of the file can be reported
    (Arrow reads everything after it as one value, silently)."""

    def __init__(self, source: Any, tally: Tally, limit: int = MAX_LINE_BYTES, *, text: bool = False) -> None:
        super().__init__()
        self.source, self.tally, self.limit, self.text = source, tally, limit, text
        self.quotes = 0  # '"' bytes passed on (text only)
        self.lines_after_quote = 0  # line ends passed on since the last '"' (text only)
        self.pending = b""  # the start of a line whose end is not read yet
        self.dropping = False  # inside a line already known to be too long
        self.out = memoryview(b"")
        self.eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.out and not self.eof:
            self.out = memoryview(self._checked(self._fill()) if self.text else self._fill())
        n = min(len(buffer), len(self.out))
        buffer[:n] = self.out[:n]
        self.out = self.out[n:]
        return n

    def _checked(self, data: bytes) -> bytes:
        """``data`` (whole lines: a sequence never straddles a line end) as valid UTF-8, bad bytes counted."""
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            fixed = data.decode("utf-8", "replace").encode()
            self.tally.add(BAD_BYTES, fixed.count(_FFFD) - data.count(_FFFD))
            data = fixed
        last = data.rfind(b'"')
        if last >= 0:
            self.quotes += data.count(b'"')
            self.lines_after_quote = data.count(b"\n", last)
        else:
            self.lines_after_quote += data.count(b"\n")
        return data

    def _fill(self) -> bytes:
        chunk = bytes(self.source.read(CHUNK_BYTES))
        if not chunk:
            self.eof = True
            if self.dropping:
                self.tally.add(LONG_LINES)
                return b""
            rest, self.pending = self.pending, b""
            return rest
        if self.dropping:
            end = chunk.find(b"\n")
            if end < 0:
                return b""
            self.dropping = False
            self.tally.add(LONG_LINES)
            chunk = chunk[end + 1:]
        last = chunk.rfind(b"\n")
        if last < 0:
            self.pending += chunk
            if len(self.pending) > self.limit:
                self.pending, self.dropping = b"", True
            return b""
        first = chunk.find(b"\n")
        if len(self.pending) + first + 1 > self.limit:
            self.tally.add(LONG_LINES)
            out = chunk[first + 1:last + 1]
        else:
            out = self.pending + chunk[:last + 1]
        self.pending = chunk[last + 1:]
        return out

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()
        super().close()


def line_blocks(stream: io.RawIOBase, size: int) -> Any:
    """Blocks of about ``size`` bytes, each ending at a line end (the last one may not)."""
    reader = io.BufferedReader(stream, CHUNK_BYTES)
    carry = b""
    while True:
        data = reader.read(size)
        if not data:
            if carry:
                yield carry
            return
        data = carry + data
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1:]
        yield data[:cut + 1]
