"""The one function that makes text from a store safe to print on a terminal.

Store, collection and field names, evidence (a Redis ACL user name, a bucket policy principal) and
problem messages are chosen by whoever controls the store or the URL. Printed raw, a name can move
the cursor or recolour the screen (ANSI escapes, C0/C1 controls), add fake lines (a newline), or
reverse what follows it (the bidi overrides and isolates U+202A–202E, U+2066–2069, "Trojan Source",
https://trojansource.codes). :func:`escaped` writes every such character as a ``\\xNN``/``\\uNNNN``
escape; :func:`safe` wraps it in a Rich ``Text`` (never markup). Every table and line renderer uses
them; JSON and SARIF escape on their own.
"""

from __future__ import annotations

import unicodedata

from rich.text import Text

# Control, format (bidi marks, zero-width), surrogate, private-use, unassigned, line/paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def escaped(text: str) -> str:
    """Control, format, surrogate and unassigned characters as ``\\xNN``/``\\uNNNN`` escapes."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) in _UNPRINTABLE:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def safe(text: str | None, style: str = "") -> Text:
    """``text`` as a Rich ``Text`` that prints exactly what it says, one line, nothing hidden."""
    return Text(escaped(text or ""), style=style)
