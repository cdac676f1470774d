"""Canary values: derived from the discovery key and a set's nonce, never stored.

Every value of canary ``index`` in field ``field`` is a function of ``HMAC(key, nonce|index|field)``,
so the catalog keeps only the nonce and keyed digests: someone who reads the catalog (or logs) learns
nothing that would let them recognise and avoid the canaries in a leaked copy, and piiguard can
re-derive them exactly to remove its own rows. Values are shaped like the field's PII type (an
e-mail at the operator's canary domain, an OAuth-like token, a device serial, a locally administered
MAC, an SSID, a common name with a made-up double-barrelled suffix, a phone number in a range
reserved for fiction, a photo link to the trap), each passing the built-in detector of its type, so
a copy job or an attacker treats them like any other customer.

Digests are ``HMAC-SHA256(key, "canary-value|" + normalised value)``, 32 bytes each. A link's digest
is of its token (the path segment after ``/c/``), which is what arrives at the trap.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from piiguard.errors import ConfigError

DIGEST_BYTES = 32
_FIRST = ("James", "Mary", "Robert", "Linda", "David", "Susan", "Thomas", "Karen")
_LAST = ("Smith", "Brown", "Miller", "Davis", "Wilson", "Moore", "Clark", "Lewis")
_CONSONANTS, _VOWELS = "bdfghklmnprstvz", "aeiou"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# North American numbers 555-0100 … 555-0199 are reserved for fiction (NANPA), in every area code
_AREAS = tuple(range(201, 990))


class ValueKind(enum.Enum):
    """What a canary field is filled with. Matchable kinds are distinctive enough to prove a copy."""

    EMAIL = "email"
    TOKEN = "token"
    IDENTIFIER = "identifier"
    SERIAL = "serial"
    MAC = "mac"
    SSID = "ssid"
    NAME = "name"
    FIRST_NAME = "first-name"
    LAST_NAME = "last-name"
    API_KEY = "api-key"
    PHONE = "phone"
    LINK = "link"
    USERNAME = "username"
    # fillers for required columns piiguard has no PII type for: valid, not distinctive
    TEXT = "text"
    INTEGER = "integer"
    SMALLINT = "smallint"
    TINYINT = "tinyint"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIME = "time"
    UUID = "uuid"
    JSON = "json"
    BINARY = "binary"

    @property
    def matchable(self) -> bool:
        return self in _MATCHABLE


_MATCHABLE = frozenset({ValueKind.EMAIL, ValueKind.TOKEN, ValueKind.IDENTIFIER, ValueKind.SERIAL, ValueKind.MAC,
                        ValueKind.SSID, ValueKind.NAME, ValueKind.FIRST_NAME, ValueKind.LAST_NAME,
                        ValueKind.API_KEY, ValueKind.PHONE, ValueKind.LINK, ValueKind.USERNAME,
                        ValueKind.TEXT})

# a scan's PII type → the canary kind that looks like it
BY_PII_TYPE: Mapping[str, ValueKind] = {
    "email": ValueKind.EMAIL, "oauth-token": ValueKind.TOKEN, "api-key": ValueKind.API_KEY,
    "customer-identifier": ValueKind.IDENTIFIER, "device-serial": ValueKind.SERIAL,
    "mac-address": ValueKind.MAC, "wifi-ssid": ValueKind.SSID, "person-name": ValueKind.NAME,
    "first-name": ValueKind.FIRST_NAME, "last-name": ValueKind.LAST_NAME, "phone": ValueKind.PHONE,
    "personal-media-url": ValueKind.LINK, "username": ValueKind.USERNAME,
}

# an engine's column type (information_schema data_type, lower case) → the filler for a required column
BY_COLUMN_TYPE: Mapping[str, ValueKind] = {
    **dict.fromkeys(("text", "character varying", "varchar", "character", "char", "tinytext", "mediumtext",
                     "longtext", "citext", "name"), ValueKind.TEXT),
    **dict.fromkeys(("integer", "int", "bigint", "mediumint"), ValueKind.INTEGER),
    "smallint": ValueKind.SMALLINT, "tinyint": ValueKind.TINYINT,
    **dict.fromkeys(("numeric", "decimal", "real", "double precision", "double", "float"), ValueKind.DECIMAL),
    **dict.fromkeys(("boolean", "bool"), ValueKind.BOOLEAN), "date": ValueKind.DATE,
    **dict.fromkeys(("timestamp without time zone", "timestamp with time zone", "timestamp", "datetime"),
                    ValueKind.TIMESTAMP),
    **dict.fromkeys(("time without time zone", "time"), ValueKind.TIME), "uuid": ValueKind.UUID,
    **dict.fromkeys(("json", "jsonb"), ValueKind.JSON),
    **dict.fromkeys(("bytea", "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary"), ValueKind.BINARY),
}
TEXT_TYPES = frozenset(t for t, k in BY_COLUMN_TYPE.items() if k is ValueKind.TEXT)


Span = tuple[int, int]
NUMBERS = frozenset({ValueKind.INTEGER, ValueKind.SMALLINT, ValueKind.TINYINT, ValueKind.DECIMAL})
# draws inside a unique column's span before going past its max: a nearly full span (ids 1…N with few
# gaps) would otherwise be retried for ever; a value just past the max looks like the newest customer
IN_SPAN_ATTEMPTS = 32


@dataclass(frozen=True)
class Deriver:
    """Derives a set's values; ``domain`` and ``trap_url`` come from ``discovery.canary``."""

    key: bytes
    nonce: str
    domain: str | None = None
    trap_url: str | None = None

    def seed(self, index: int, field: str, attempt: int = 0) -> bytes:
        return hmac.new(self.key, f"{self.nonce}|{index}|{field}|{attempt}".encode(), hashlib.sha256).digest()

    def value(self, index: int, field: str, kind: ValueKind, max_length: int | None = None,
              span: Span | None = None, attempt: int = 0, shape: str | None = None) -> Any:
        """The value of canary ``index`` in ``field``; text is cut to ``max_length`` (a derivation too).
        A number with a ``span`` (the column's observed min and max) falls inside it; ``attempt`` > 0
        draws another one (after a collision with an existing row)."""
        if span is not None and kind in NUMBERS:
            return in_span(self.seed(index, field, attempt), span, attempt)
        if shape is not None and kind in SHAPED:
            return shaped(self.seed(index, field), shape)
        out = _shape(kind, self.seed(index, field), self)
        if isinstance(out, str) and max_length and kind is not ValueKind.EMAIL:
            out = out[:max_length]
        return out

    def rows(self, count: int, fields: Mapping[str, ValueKind],
             lengths: Mapping[str, int | None] | None = None,
             spans: Mapping[str, Span | None] | None = None,
             shapes: Mapping[str, str | None] | None = None) -> list[dict[str, Any]]:
        lengths, spans, shapes = lengths or {}, spans or {}, shapes or {}
        return [{f: self.value(i, f, k, lengths.get(f), spans.get(f), shape=shapes.get(f))
                 for f, k in fields.items()} for i in range(count)]


# kinds whose text follows the shape of the column's own values (see shape_of)
SHAPED = frozenset({ValueKind.USERNAME})
SHAPE_MIN_LENGTH = 8  # shorter is not distinctive enough to prove a copy
_SHAPE = re.compile(r"([aA9]*)([._-]*):(\d+)-(\d+)")
_CLASSES = {"a": "abcdefghijklmnopqrstuvwxyz", "A": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "9": "0123456789"}


def shape_of(values: Iterable[object]) -> str | None:
    """The shape of a column's values, e.g. ``a9_:8-14``: which character classes (lower, upper,
    digit) and separators they use, and their length range. It holds no value (nothing of a
    customer's is copied), so it is stored with the set and canaries are re-derived from it.
    None when the sample is too small or its values too short or not handle-like."""
    texts = [v for v in values if isinstance(v, str) and v and not any(c.isspace() for c in v) and len(v) <= 32]
    if len(texts) < 10:
        return None
    joined = "".join(texts)
    classes = "".join(c for c, alphabet in _CLASSES.items() if any(ch in alphabet for ch in joined))
    seps = "".join(c for c in "._-" if c in joined)
    if not classes or any(not (ch.isascii() and ch.isalnum()) and ch not in seps for ch in joined):
        return None  # other characters (non-ASCII, '@', '+'): keep the default handle
    lengths = sorted(len(t) for t in texts)
    lo, hi = max(lengths[len(lengths) // 10], SHAPE_MIN_LENGTH), lengths[-1 - len(lengths) // 10]
    return f"{classes}{seps}:{lo}-{hi}" if hi >= lo else None


def parse_shape(shape: str) -> tuple[str, str, int, int]:
    m = _SHAPE.fullmatch(shape)
    if m is None:
        raise ValueError(f"not a canary shape: {shape!r}")
    return m.group(1), m.group(2), int(m.group(3)), int(m.group(4))


def shaped(seed: bytes, shape: str) -> str:
    """A handle of ``shape``: a common first name's start in the shape's letter case, maybe one of its
    separators, then derived characters of its classes (at least 4 of them: the distinctive part)."""
    classes, seps, lo, hi = parse_shape(shape)
    n = int.from_bytes(seed[:8], "big")
    length = lo + n % (hi - lo + 1)
    first = _FIRST[seed[8] % len(_FIRST)].lower()
    first = first.upper() if "a" not in classes and "A" in classes else \
        first.capitalize() if "A" in classes and seed[9] % 2 else first
    sep = seps[seed[10] % len(seps)] if seps and seed[11] % 2 else ""
    name = first[:max(0, length - 4 - len(sep))] if "a" in classes or "A" in classes else ""
    if not name:
        sep = ""
    tail = _alnum(seed[12:], length - len(name) - len(sep), "".join(_CLASSES[c] for c in classes))
    return name + sep + tail


def encode_kind(kind: ValueKind, shape: str | None) -> str:
    """How the catalog records a field's kind: ``username``, or ``username:a9_:8-14`` with a shape."""
    return f"{kind.value}:{shape}" if shape else kind.value


def decode_kind(recorded: str) -> tuple[ValueKind, str | None]:
    kind, _, shape = recorded.partition(":")
    return ValueKind(kind), shape or None



def in_span(seed: bytes, span: Span, attempt: int = 0) -> int:
    """A number inside ``span`` (inclusive) from ``seed``; from attempt ``IN_SPAN_ATTEMPTS`` on, the
    next values past its max (max+1, max+2, …), for a unique column whose span is (nearly) full."""
    lo, hi = span
    if attempt >= IN_SPAN_ATTEMPTS:
        return hi + 1 + attempt - IN_SPAN_ATTEMPTS
    return lo + int.from_bytes(seed[:16], "big") % (hi - lo + 1)


def check_settings(kinds: Iterable[ValueKind], domain: str | None, trap_url: str | None) -> None:
    """ConfigError naming the setting a kind needs and that is missing."""
    kinds = set(kinds)
    if ValueKind.EMAIL in kinds and not domain:
        raise ConfigError(["discovery.canary.domain: canary e-mails need a domain you own"],
                          hint="set discovery.canary.domain, e.g. canary.example.com (its mail can reach the trap)")
    if ValueKind.LINK in kinds and not trap_url:
        raise ConfigError(["discovery.canary.trap_url: canary links need the trap's public URL"],
                          hint="set discovery.canary.trap_url, e.g. https://trap.example.com")


def _b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode().rstrip("=").lower()


def _b64(seed: bytes) -> str:
    return base64.urlsafe_b64encode(seed).decode().rstrip("=")


def link_token(seed: bytes) -> str:
    # letters and digits only: a URL-safe base64 token may start with "-", which text splits at
    return _alnum(seed, 22)


def _alnum(seed: bytes, n: int, alphabet: str = _ALNUM) -> str:
    x = int.from_bytes(seed, "big")
    out = []
    for _ in range(n):
        x, r = divmod(x, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


def _word(seed: bytes) -> str:
    """A pronounceable made-up word (Toranek): a name's suffix that a name validator still accepts."""
    x = int.from_bytes(seed[:8], "big")
    out = []
    for _ in range(3):
        x, c = divmod(x, len(_CONSONANTS))
        x, v = divmod(x, len(_VOWELS))
        out.append(_CONSONANTS[c] + _VOWELS[v])
    x, c = divmod(x, len(_CONSONANTS))
    return ("".join(out) + _CONSONANTS[c]).capitalize()


_SSID_SHAPES = (("Vodafone-", 8, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
                ("Verizon_", 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
                ("ATT", 7, _ALNUM), ("SKY", 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))


def _shape(kind: ValueKind, h: bytes, d: Deriver) -> Any:  # one branch per kind
    n = int.from_bytes(h[:8], "big")
    if kind is ValueKind.EMAIL:
        return f"{_FIRST[h[0] % 8].lower()}.{_b32(h[1:])[:8]}@{d.domain}"
    if kind is ValueKind.TOKEN:
        return "ya29.a0" + _b64(h)[:36]
    if kind is ValueKind.IDENTIFIER:
        return "cus_" + h[:8].hex()
    if kind is ValueKind.API_KEY:
        return "sk_live_" + _alnum(h, 24)
    if kind is ValueKind.SERIAL:
        return f"{_alnum(h[:6], 4, _ALNUM[:26])}-{n % 10_000:04d}-{_alnum(h[6:12], 4, _ALNUM[:26] + _ALNUM[52:])}"
    if kind is ValueKind.MAC:
        first = (h[0] & 0xFC) | 0x02  # locally administered, unicast: no vendor's range
        return ":".join(f"{b:02x}" for b in (first, *h[1:6]))
    if kind is ValueKind.SSID:
        prefix, length, alphabet = _SSID_SHAPES[h[0] % len(_SSID_SHAPES)]
        return prefix + _alnum(h[1:], length, alphabet)
    if kind is ValueKind.NAME:
        return f"{_FIRST[h[0] % 8]} {_LAST[h[1] % 8]}-{_word(h[2:])}"
    if kind is ValueKind.FIRST_NAME:
        return f"{_FIRST[h[0] % 8]}-{_word(h[2:])}"
    if kind is ValueKind.LAST_NAME:
        return f"{_LAST[h[1] % 8]}-{_word(h[2:])}"
    if kind is ValueKind.USERNAME:
        return f"{_FIRST[h[0] % 8].lower()}_{_b32(h[1:])[:8]}"
    if kind is ValueKind.PHONE:
        return f"+1 {_AREAS[n % len(_AREAS)]} 555 01{h[8] % 100:02d}"
    if kind is ValueKind.LINK:
        # shaped as a photo URL, as the field's detector expects; the token is the segment after /c/
        return f"{(d.trap_url or '').rstrip('/')}/c/{link_token(h)}/avatar.jpg"
    if kind is ValueKind.TEXT:
        return "x" + h[:10].hex()
    if kind is ValueKind.INTEGER:
        return 1 + n % 2_000_000_000
    if kind is ValueKind.SMALLINT:
        return 1 + n % 32_000
    if kind is ValueKind.TINYINT:
        return 1 + n % 120
    if kind is ValueKind.DECIMAL:
        return 0
    if kind is ValueKind.BOOLEAN:
        return False
    if kind is ValueKind.DATE:
        return "2000-01-01"
    if kind is ValueKind.TIMESTAMP:
        return "2000-01-01 00:00:00"
    if kind is ValueKind.TIME:
        return "00:00:00"
    if kind is ValueKind.UUID:
        return str(uuid.UUID(bytes=h[:16], version=4))
    if kind is ValueKind.JSON:
        return "{}"
    return b""


def normalise(value: str) -> str:
    return value.strip().lower()


@functools.lru_cache(maxsize=4)
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, b"canary-value|", hashlib.sha256)


def digest(key: bytes, value: str) -> bytes:
    # a copy of the keyed, prefixed state: the key schedule is paid once, not per value (~1.3x)
    h = _keyed(key).copy()
    h.update(normalise(value).encode("utf-8", "surrogatepass"))
    return h.digest()


def matched_form(value: Any, kind: ValueKind) -> str:
    """What of a value is digested: a link's token, or the value as text."""
    text = str(value)
    return text.partition("/c/")[2].partition("/")[0] if kind is ValueKind.LINK else text


def forms(value: str) -> set[str]:
    """What of a stored value may be a canary's digested form: itself, each path segment of a URL (a
    copy may hold the link whole, or rewritten on another host), and — in a long or structured value
    (a JSON document, free text) — every candidate substring."""
    out = {value, *(p for p in value.split("/") if len(p) >= 7)} if "/" in value else {value}
    if len(value) > 48 or value[:1] in "{[":
        out |= candidates(value)
    return out


def digests(key: bytes, rows: Sequence[Mapping[str, Any]], fields: Mapping[str, ValueKind]) -> bytes:
    """One digest per canary and matchable field (fields in sorted order), concatenated: the catalog's
    record of a set, for matching (position // fields = which canary, position % fields = which field)."""
    names = matchable_fields(fields)
    return b"".join(digest(key, matched_form(row[f], fields[f])) for row in rows for f in names)


def matchable_fields(fields: Mapping[str, ValueKind]) -> list[str]:
    return sorted(f for f, k in fields.items() if k.matchable)


def split(blob: bytes) -> Iterator[bytes]:
    for i in range(0, len(blob) - len(blob) % DIGEST_BYTES, DIGEST_BYTES):
        yield blob[i:i + DIGEST_BYTES]


# what may be a canary value inside free text (a request, a mail): runs of the characters canary values
# are made of; '/', '=', '&', '?', quotes and spaces split them (a link's token arrives as a path segment)
CANDIDATE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+!-]{6,}")  # tokens and user names hold "_"
_TRAIL = ".:-+!"


def candidates(text: str) -> set[str]:
    """Every substring of ``text`` that may be a whole canary value (with and without trailing
    punctuation, and a name's two words joined as one)."""
    out: set[str] = set()
    words = CANDIDATE.findall(text)
    for w in words:
        out.add(w)
        out.add(w.rstrip(_TRAIL))
    # names ("Robin Vale-abcde") and phones ("+1 202 555 0142") hold spaces
    out.update(m.group(0) for m in re.finditer(r"[A-Z][a-z]+ [A-Z][a-z]+-[A-Z][a-z]+", text))
    out.update(m.group(0) for m in re.finditer(r"\+1 \d{3} 555 01\d\d", text))
    return out
