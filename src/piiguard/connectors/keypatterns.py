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
    """Patterns → the indices of the keys that have that shape (every key is in exactly one).

    A walk down the segments with a stack of its own, not recursion: a key of 10,000 segments is grouped
    like any other (the order of the patterns is the depth-first order, words before ``*``)."""
    parts = [k.split(SEPARATOR) for k in keys]
    words = [[None if is_data(s) else s for s in p] for p in parts]
    out: dict[str, list[int]] = {}
    # a prefix is a chain (its last word, the rest): a deep key costs no copy of its prefix per segment
    stack: list[tuple[list[int], int, tuple[str, object] | None]] = [(list(range(len(keys))), 0, None)]
    while stack:
        members, depth, prefix = stack.pop()
        ended = [i for i in members if len(parts[i]) == depth]
        if ended:
            out.setdefault(_join(prefix), []).extend(ended)
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
        ordered = sorted(branches.items(), key=lambda kv: str(kv[0]))
        later: list[tuple[list[int], int, tuple[str, object] | None]] = [
            (kept, depth + 1, (str(word), prefix)) for word, kept in ordered]
        if star:
            later.append((sorted(star), depth + 1, (WILDCARD, prefix)))
        stack.extend(reversed(later))  # popped in the order a recursive walk would visit them
    return out


def _join(prefix: tuple[str, object] | None) -> str:
    segments: list[str] = []
    while prefix is not None:
        word, rest = prefix
        segments.append(word)
        prefix = rest  # type: ignore[assignment]
    return SEPARATOR.join(reversed(segments))


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
        """The pattern ``key`` belongs to, or None if it has a shape no pattern has.

        A depth-first search with backtracking (a word before ``*`` at each place) on a stack of its own,
        not recursion: a key of 10,000 segments is assigned like any other."""
        segments = key.split(SEPARATOR)
        root = self.tree.get(len(segments))
        if root is None:
            return None
        path: list[str] = []
        # one entry per place reached: the node there and the choices not tried yet
        stack: list[tuple[dict[str, object], list[str]]] = [(root, self._choices(segments[0]))]
        while stack:
            node, choices = stack[-1]
            if len(stack) > len(segments):  # every place has its segment
                return SEPARATOR.join(path)
            if not choices:
                stack.pop()
                if path:
                    path.pop()
                continue
            choice = choices.pop(0)
            child = node.get(choice)
            if isinstance(child, dict):
                path.append(choice)
                depth = len(stack)
                stack.append((child, self._choices(segments[depth]) if depth < len(segments) else []))
        return None

    @staticmethod
    def _choices(word: str) -> list[str]:
        return [word, WILDCARD] if word != WILDCARD and not is_data(word) else [WILDCARD]


def variable_part(pattern: str, key: str) -> str | None:
    """The segments of ``key`` at the pattern's ``*`` places, joined by ``:`` (None if there are none)."""
    pieces = [s for p, s in zip(pattern.split(SEPARATOR), key.split(SEPARATOR), strict=False) if p == WILDCARD]
    return SEPARATOR.join(pieces) if pieces else None


def glob(pattern: str) -> str:
    """A Redis ``MATCH`` pattern that matches (at least) the keys of ``pattern``; its words escaped.

    A run of ``*`` places is one ``*`` (a glob ``*`` matches ``:`` too): the keys it matches are a superset,
    which :meth:`Patterns.assign` narrows, and a key of thousands of places gives a short ``MATCH``
    (Redis refuses to match a pattern with very many ``*``)."""
    out: list[str] = []
    for s in pattern.split(SEPARATOR):
        if s != WILDCARD:
            out.append(re.sub(r"([\\*?\[\]])", r"\\\1", s))
        elif len(out) < 2 or out[-1] != WILDCARD or out[-2] != WILDCARD:
            out.append(s)
        # a third * in a row adds nothing: ``*:*`` already matches any run of ':'-separated places
    return SEPARATOR.join(out)
