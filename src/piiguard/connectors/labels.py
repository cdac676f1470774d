"""Names read from a store are data too: the one function that makes them safe to show and store.

A CSV header, a JSON key, an index, collection, table or file name is chosen by whoever wrote the
data — and an export without a header row, or a document keyed by e-mail address, turns customers'
values into names. Every connector passes each such name through :func:`label` before it becomes a
field path or a collection name; the scanner does the same for collection names. ``label``:

- replaces a name that *is* a PII value (classified by the strong, shape-validated detectors: e-mail,
  phone, card, IBAN, IP, MAC, tokens, keys, full names, birth dates …) by its type, ``<email>``;
- replaces PII *inside* a name (``backup-alice@example.com.csv``, ``by_phone.+14155550134``) the
  same way, per path segment and inside the text;
- writes control and unprintable characters as ``\\xNN`` escapes (a name can hold a terminal escape
  sequence or bytes that are not UTF-8), and cuts a name longer than :data:`MAX_LABEL_CHARS`.

Vocabulary detectors (first names, cities, usernames) are *not* used on names: alone, ``city`` or
``Grant`` is as likely a column name as a value. :func:`header_is_data` uses every detector, but
only to compare a header row with the rows under it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING

from piiguard import plugins
from piiguard.classify.detectors import Detector, name_tokens
from piiguard.classify.engine import Classifier
from piiguard.registry import driver
from piiguard.report.terminal import escaped

if TYPE_CHECKING:
    import pyarrow as pa
else:  # imported on first use: starting the CLI must not load every engine's driver
    pa = driver("pyarrow")

MAX_LABEL_CHARS = 200
# Types whose pattern plus validator prove a value on their own, without a column of values or a
# field name to back them (see the module docstring: why not names, cities or usernames).
LABEL_TYPES = frozenset({"api-key", "birth-date", "credit-card", "email", "geo-coordinates", "iban",
                         "ip-address", "mac-address", "national-id", "oauth-token", "password-hash",
                         "person-name", "personal-media-url", "phone", "street-address", "us-ssn"})
# An identifier used as a name: six or more digits (a customer number, a phone number written bare),
# or a UUID. Shorter numbers (``1``, ``2024``) stay: they are as often a column or a year as an id.
_ID = re.compile(r"\+?\d{6,}|(?i:[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})")
_IDN_EMAIL = re.compile(r"(?<![^\W_]|[@+])[^\W_][\w.%+'-]{0,63}@[^\W_][\w-]*(?:\.[^\W_][\w-]*)*\.[^\W\d_]{2,24}"
                        r"(?![^\W_]|@)")
_SURROGATES = re.compile("([\ud800-\udfff]+)")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?%?")


class Labeler:
    """Classifies names with a set of detectors; results are cached (names repeat in every batch)."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = [d for d in detectors if d.name in LABEL_TYPES]
        self.classifier = Classifier(self.detectors)
        self.everything = Classifier(list(detectors))
        self._embedded: list[tuple[str, re.Pattern[str]]] = []
        for d in self.detectors:
            if not (d.embedded and d.in_text):
                continue
            try:  # the patterns are RE2; the few RE2-only constructs Python lacks just skip that type
                flags = re.IGNORECASE if d.ignore_case else 0
                # "_" is a separator in file names (kunde@example.de_export.csv), not part of a value
                self._embedded.append((d.name, re.compile(rf"(?<![^\W_]|[@+])(?:{d.in_text})(?![^\W_]|@)", flags)))
            except re.error:
                continue
        if any(d.name == "email" for d in self.detectors):
            # Internationalised addresses (käthe@müller.de, RFC 6531): the detector's pattern is ASCII
            # only, Python's \w is Unicode. Names only; values are the classifier's.
            self._embedded.append(("email", _IDN_EMAIL))
        self._validators = {d.name: d.validate for d in self.detectors}
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def pii_type(self, text: str, *, every_detector: bool = False) -> str | None:
        """The PII type ``text`` would be classified as, alone, with no field name to help."""
        classifier = self.everything if every_detector else self.classifier
        state = classifier.new_state("")
        classifier.observe(state, pa.array([text], pa.string()))
        return classifier.decide(state, "", "").pii_type

    def label(self, name: str) -> str:
        """``name`` as it may be shown, logged and stored (see the module docstring)."""
        hit = self._cache.get(name)  # a dict read is atomic; only writes take the lock
        if hit is not None:
            return hit
        out = self._label(name)
        with self._lock:
            if len(self._cache) < 100_000:  # a store with a key per customer must not grow this forever
                self._cache[name] = out
        return out

    def _label(self, name: str) -> str:
        # PII is looked for in the raw text and escapes are written after it: the letters of an escape
        # (``\u200b``) must never become part of a match. Format characters (zero-width, bidi marks)
        # are dropped first, so that they cannot hide a value; a surrogate (a file name that is not
        # UTF-8) is never part of one and cannot be classified: the text around it is labelled alone.
        text = "".join(ch for ch in name if unicodedata.category(ch) != "Cf")
        parts = _SURROGATES.split(text)
        out = "".join(escaped(p) if i % 2 else escaped(self._replaced(p)) for i, p in enumerate(parts))
        return out if len(out) <= MAX_LABEL_CHARS else out[:MAX_LABEL_CHARS] + "…"

    def _replaced(self, name: str) -> str:
        if not name:
            return name
        if "/" in name:  # a URL is one value (a photo URL) though it has segments
            whole = self.pii_type(name.strip())
            if whole is not None:
                return f"<{whole}>"
        segments = []
        for segment in name.split("/"):
            stem, dot, suffix = segment.rpartition(".")
            kind = None
            if dot and stem.strip() and suffix.isalpha() and len(suffix) <= 8:  # a file's name: the stem alone
                kind = self.pii_type(stem.strip())
                if kind is not None:
                    segments.append(f"<{kind}>.{suffix}")
                    continue
            kind = self.pii_type(segment.strip()) if segment.strip() else None
            if kind is None and _ID.fullmatch(segment.strip()):
                kind = "id"  # a key per customer (``{"7000000": {...}}``): one wildcard segment, like ``[]``
            segments.append(f"<{kind}>" if kind else segment)
        return self._embedded_replaced("/".join(segments))

    def _embedded_replaced(self, text: str) -> str:
        for kind, regex in self._embedded:
            validate = self._validators.get(kind)

            def sub(m: re.Match[str], kind: str = kind, validate: object = validate) -> str:
                value = m.group(0)
                ok = validate is None or (callable(validate) and validate(value))
                return f"<{kind}>" if ok else value

            text = regex.sub(sub, text)
        return text


@cache
def default() -> Labeler:
    """The labeler with the built-in detectors (and plugins'), built once per process."""
    plugins.load()
    return Labeler(plugins.detectors_for())


def label(name: str) -> str:
    """A name read from a store, safe to show and store: PII as ``<type>``, unprintables escaped."""
    return default().label(name)


def is_number_or_date(text: str) -> bool:
    """Whether a cell is a number, a date or a timestamp (a header is words, not measurements)."""
    t = text.strip()
    if not t:
        return False
    if _NUMBER.fullmatch(t):
        return True
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            parse(t)
            return True
        except ValueError:
            continue
    return bool(re.fullmatch(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?", t))


def shape(text: str) -> str:
    """A value's shape: runs of upper-case letters, lower-case letters and digits as ``A``, ``a``,
    ``9``, other characters kept (``SN-0042`` → ``A-9``, ``k9x2`` → ``a9a9``)."""
    out: list[str] = []
    for ch in text.strip():
        c = "A" if ch.isupper() else "a" if ch.isalpha() else "9" if ch.isdigit() else ch
        if not out or out[-1] != c or c not in "Aa9":
            out.append(c)
    return "".join(out)


def _same_shape(header: Sequence[str | None], rows: Sequence[Sequence[str | None]]) -> bool:
    """Every cell of the first row has its column's usual shape, and the shapes hold digits (codes,
    ids, serials): a row of the data, not words about it. (Words alone — ``Name`` over ``Alice`` —
    prove nothing: names and headers are both capitalised words.)"""
    compared = digits = 0
    for i, cell in enumerate(header):
        values = [v for r in rows if i < len(r) and (v := r[i]) is not None and v.strip()]
        if cell is None or not cell.strip() or len(values) < 2:
            continue
        shapes: dict[str, int] = {}
        for v in values:
            shapes[shape(v)] = shapes.get(shape(v), 0) + 1
        usual, count = max(shapes.items(), key=lambda kv: kv[1])
        if count < 0.8 * len(values) or shape(cell) != usual:
            return False
        compared += 1
        digits += "9" in usual
    return compared > 0 and digits > 0


# Words that name a column in the languages exports come in: a row of them over names is a header.
_HEADER_TEXT = """
vorname nachname familienname name namen anrede titel strasse straße hausnummer stadt ort plz postleitzahl land
telefon handy mobil geburtsdatum geburtstag firma kunde kundennummer benutzer benutzername konto status typ
prénom prenom nom ville rue pays téléphone telephone nombre apellido apellidos ciudad calle país pais teléfono
nome cognome città citta via voornaam achternaam naam plaats straat imię imie nazwisko miasto ulica förnamn
efternamn stad fornavn etternavn etunimi sukunimi kaupunki
名前 氏名 姓 名 名字 苗字 住所 電話 電話番号 メール 年齢 性別 会社 部署 国 市 都道府県 ふりがな フリガナ 生年月日 顧客
姓名 名称 地址 电话 邮箱 城市 国家 性别 年龄 公司 用户 用户名 이름 성 주소 전화 이메일 도시
"""
HEADER_WORDS = frozenset(_HEADER_TEXT.split())
_HANDLE = re.compile(r"@[^\W][\w.]{0,40}")


def _shape_class(text: str) -> str | None:
    """A coarse class of a cell: an @handle, CJK text, or capitalised word(s); None for anything else."""
    t = text.strip()
    if _HANDLE.fullmatch(t):
        return "handle"
    if t and all(unicodedata.name(ch, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")) for ch in t):
        return "cjk"
    words = re.split(r"[ '’-]", t)
    if t and all(w[:1].isupper() and w.isalpha() for w in words if w) and any(words):
        return "word"
    return None


def _same_class(header: Sequence[str | None], rows: Sequence[Sequence[str | None]], classifier: Classifier) -> bool:
    """The first row's cells are of their columns' usual class and none is a word that names a field:
    one @handle over handles or CJK over CJK is enough (no header is written so); capitalised words
    must all be, over columns of PII (names, cities): ``Status`` over ``Active`` stays a header."""
    cells = [(i, c.strip()) for i, c in enumerate(header) if c is not None and c.strip()]
    if any(c.casefold() in HEADER_WORDS or any(d.context_hit(name_tokens(c)) for d in classifier.detectors)
           for _, c in cells):
        return False
    strong = words = compared = 0
    for i, cell in cells:
        values = [v for r in rows if i < len(r) and (v := r[i]) is not None and v.strip()]
        kind = _shape_class(cell)
        if kind is None or len(values) < 2 or sum(_shape_class(v) == kind for v in values) < 0.8 * len(values):
            continue
        compared += 1
        if kind != "word":
            strong += 1
            continue
        state = classifier.new_state("")
        classifier.observe(state, pa.array(values, pa.string()))
        words += classifier.decide(state, "", "").pii_type is not None
    return strong > 0 or (words > 0 and words == compared == len(cells))


# Types whose values look like any identifier (``c06``, ``firmware_version``, ``jmeno``): a header cell of
# that shape above a column of that type is how column names look, not evidence of a record.
IDENTIFIER_SHAPED = frozenset({"username", "device-serial", "customer-identifier", "api-key"})


def header_is_data(header: Sequence[str | None], rows: Sequence[Sequence[str | None]]) -> bool:
    """Whether a file's first row is a record rather than column names.

    It is a record when any of its cells is a PII value, a number or a date, when every cell has its
    column's shape and the shapes hold digits (``SN-0001,k9x2`` over ``SN-0002,p3q4``), or when a cell has the
    same PII type as the values under it (``Alice`` over ``Bob``, ``Carol`` …) and is not a word that
    names a field (``city``, ``nickname``) or an identifier-shaped word (``c06``, ``firmware_version``:
    :data:`IDENTIFIER_SHAPED`). A header row is made of words that describe the column, never of the
    column's own kind of value.
    """
    labeler = default()
    cells = [c for c in header if c is not None and c.strip()]
    if not cells:
        return False
    if any(is_number_or_date(c) for c in cells):
        return True
    if any(labeler.pii_type(c.strip()) is not None for c in cells):
        return True
    if _same_shape(header, rows):
        return True
    classifier = labeler.everything
    if _same_class(header, rows, classifier):
        return True
    for i, cell in enumerate(header):
        values = [r[i] for r in rows if i < len(r) and r[i] is not None]
        if cell is None or not cell.strip() or len(values) < 2:
            continue
        tokens = name_tokens(cell)
        if any(d.context_hit(tokens) for d in classifier.detectors):
            continue  # a word detectors read as a field name ("city", "nickname") is a column name
        mine = labeler.pii_type(cell.strip(), every_detector=True)
        if mine is None or mine in IDENTIFIER_SHAPED:
            continue
        state = classifier.new_state("")
        classifier.observe(state, pa.array(values, pa.string()))
        if classifier.decide(state, "", "").pii_type == mine:
            return True
    return False
