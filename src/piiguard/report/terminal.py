"""The one function that makes text from a store safe to print on a terminal.

Store, collection and field names, evidence (a Redis ACL user name, a bucket policy principal) and
problem messages are chosen by whoever controls the store or the URL. Printed raw, a name can move
the cursor or recolour the screen (ANSI escapes, C0/C1 controls), add fake lines (a newline), or
reverse what follows it (the bidi overrides and isolates U+202A–202E, U+2066–2069, "Trojan Source",
https://trojansource.codes). :func:`escaped` writes every such character as a ``\\xNN``/``\\uNNNN``
escape; :func:`safe` wraps it in a Rich ``Text`` (never markup). Every table and line renderer uses
them; JSON and SARIF escape on their own.

`new_console` is the one way a command makes its Rich console: when the output is not a terminal
(a pipe, a file, a CI log) Rich would lay tables out for 80 columns and cut every address and check
id to ``127.0.0…``; there it is as wide as :data:`PIPE_WIDTH`, so a table is as wide as its content.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.console import Console
from rich.text import Text

PIPE_WIDTH = 4096  # columns when not on a terminal: wider than any row a table holds; lines are not padded

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


def new_console(*, stderr: bool = False, **options: Any) -> Console:
    """A command's Rich console: the terminal's width on a terminal, :data:`PIPE_WIDTH` elsewhere."""
    out = Console(stderr=stderr, **options)
    return out if out.is_terminal else Console(stderr=stderr, width=PIPE_WIDTH, **options)
