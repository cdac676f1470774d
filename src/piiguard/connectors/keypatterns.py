"""Key-value keys grouped by shape: ``session:cust-123`` and ``session:cust-456`` are ``session:*``.

A key is split at ``:`` (the Redis convention). A segment becomes ``*`` when it is data:

- it holds a digit or an ``@``, or any character but ASCII letters, ``-`` and ``_`` (ids, e-mails,
  numbers, UUIDs, dotted or non-ASCII names), or is longer than :data:`MAX_WORD` characters, or the
  labeler reads it as PII (:func:`piiguard.connectors.labels.label`);
- it is a word that fewer than :data:`MIN_KEYS` sampled keys share at that place (``user:alice``
  alone says nothing about ``alice`` being a name of a kind of key);
- more than :data:`MAX_SIBLINGS` different words follow the same prefix (``user:alice``,
  ``user:bob`` … are one variable place, whatever its words).

So a pattern is made of separators, ``*`` and words shared by several keys. Keys with a different
number of segments are different patterns (``session:*`` and ``session:*:meta``).
:func:`assign` puts any key (one never sampled too) in the pattern it belongs to, preferring a word
to ``*`` at each place as the grouping does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from piiguard.connectors.labels import label

SEPARATOR = ":"
WILDCARD = "*"
MIN_KEYS = 3
MAX_SIBLINGS = 16
MAX_WORD = 32
_WORD = re.compile(r"[A-Za-z][A-Za-z_-]*")


def is_data(segment: str) -> bool:
    """Whether a segment is a value (an id, an e-mail, a number …), whatever keys surround it."""
    if segment == "":
        return False
    if len(segment) > MAX_WORD or not _WORD.fullmatch(segment):
        return True
    return label(segment) != segment


def group(keys: Sequence[str]) -> dict[str, list[int]]:
    """Patterns → the indices of the keys that have that shape (every key is in exactly one)."""
    parts = [k.split(SEPARATOR) for k in keys]
    words = [[None if is_data(s) else s for s in p] for p in parts]
    out: dict[str, list[int]] = {}

    def walk(members: list[int], depth: int, prefix: list[str]) -> None:
        # iterative over depth for each branch; recursion depth is the number of segments
        ended = [i for i in members if len(parts[i]) == depth]
        if ended:
            out.setdefault(SEPARATOR.join(prefix), []).extend(ended)
        branches: dict[str | None, list[int]] = {}
        for i in members:
            if len(parts[i]) > depth:
                branches.setdefault(words[i][depth], []).append(i)
        star = branches.pop(None, [])
        if len(branches) > MAX_SIBLINGS:
            for kept in branches.values():
                star += kept
            branches = {}
        for word in [w for w, kept in branches.items() if len(kept) < MIN_KEYS]:
            star += branches.pop(word)
        for word, kept in sorted(branches.items(), key=lambda kv: str(kv[0])):
            walk(kept, depth + 1, [*prefix, str(word)])
        if star:
            walk(sorted(star), depth + 1, [*prefix, WILDCARD])

    walk(list(range(len(keys))), 0, [])
    return out


class Patterns:
    """Known patterns, to put any key in one of them (:func:`assign`)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.tree: dict[int, dict[str, object]] = {}
        for p in patterns:
            segments = p.split(SEPARATOR)
            node = self.tree.setdefault(len(segments), {})
            for s in segments:
                node = node.setdefault(s, {})  # type: ignore[assignment]

    def assign(self, key: str) -> str | None:
        """The pattern ``key`` belongs to, or None if it has a shape no pattern has."""
        segments = key.split(SEPARATOR)
        root = self.tree.get(len(segments))
        if root is None:
            return None

        def find(node: dict[str, object], depth: int) -> list[str] | None:
            if depth == len(segments):
                return []
            word = segments[depth]
            for choice in (word, WILDCARD) if word != WILDCARD and not is_data(word) else (WILDCARD,):
                child = node.get(choice)
                if isinstance(child, dict):
                    rest = find(child, depth + 1)
                    if rest is not None:
                        return [choice, *rest]
            return None

        found = find(root, 0)
        return None if found is None else SEPARATOR.join(found)


def variable_part(pattern: str, key: str) -> str | None:
    """The segments of ``key`` at the pattern's ``*`` places, joined by ``:`` (None if there are none)."""
    pieces = [s for p, s in zip(pattern.split(SEPARATOR), key.split(SEPARATOR), strict=False) if p == WILDCARD]
    return SEPARATOR.join(pieces) if pieces else None


def glob(pattern: str) -> str:
    """A Redis ``MATCH`` pattern that matches (at least) the keys of ``pattern``; its words escaped."""
    return SEPARATOR.join(WILDCARD if s == WILDCARD else re.sub(r"([\\*?\[\]])", r"\\\1", s)
                          for s in pattern.split(SEPARATOR))
