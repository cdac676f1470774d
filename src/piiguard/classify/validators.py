"""Validators: the precision half of a detector. Each takes one candidate value, returns a bool.

They run on values the weak pattern already matched (and on each distinct value once), so they may
parse; they must not raise.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import math
import re
import unicodedata
from collections import Counter
from datetime import date

import phonenumbers

from piiguard.classify import dictionaries as words
from piiguard.classify import lexicon

_NON_DIGITS = re.compile(r"\D")


def digits(value: str) -> str:
    return _NON_DIGITS.sub("", value)


def luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def credit_card(value: str) -> bool:
    """13–19 digits (Maestro: 12–19), a known issuer prefix, and the Luhn checksum."""
    d = digits(value)
    if not (13 <= len(d) <= 19 or (len(d) == 12 and d[0] in "56")) or len(set(d)) < 2:
        return False
    # Issuer prefixes of the card networks (Visa, Mastercard incl. 2-series and Maestro, Amex, Discover,
    # Diners, JCB incl. the 15-digit 1800/2131, UnionPay): Luhn alone passes one random number in ten.
    issuer = d[0] in "3456" or d.startswith(("1800", "2131")) or 2221 <= int(d[:4]) <= 2720
    return issuer and luhn(d)


IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}


def iban(value: str) -> bool:
    """ISO 13616: the country's length and the mod-97 check digits."""
    s = value.replace(" ", "").upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not s.isalnum():
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def us_ssn(value: str) -> bool:
    """Area not 000, 666 or 9xx; group not 00; serial not 0000; not a well-known example."""
    d = digits(value)
    if len(d) != 9 or d in ("078051120", "219099999", "123456789"):
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
_VERHOEFF_D = [[(i + j) % 5 + 5 * ((i // 5 + j // 5) % 2) if i < 5 and j < 5 else 0 for j in range(10)]
               for i in range(10)]
_NINO = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]")


def _verhoeff(number: str) -> bool:
    d = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
         [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
         [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
         [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
    p = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]]
    for _ in range(6):
        p.append([p[1][x] for x in p[-1]])
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = d[c][p[i % 8][int(ch)]]
    return c == 0


def national_id(value: str) -> bool:
    """UK NINO, Spanish DNI/NIE, Italian codice fiscale, French NIR; with context: Dutch BSN,
    Canadian SIN, Indian Aadhaar — each by its own check digit or letter."""
    s = value.replace(" ", "").replace("-", "").upper()
    if _NINO.fullmatch(s):
        return s[:2] not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")
    if re.fullmatch(r"[XYZ]?\d{7,8}[A-Z]", s):
        num = s[:-1].replace("X", "0").replace("Y", "1").replace("Z", "2")
        return len(num) == 8 and _DNI_LETTERS[int(num) % 23] == s[-1]
    if re.fullmatch(r"[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]", s):
        total = 0
        for i, ch in enumerate(s[:15]):
            k = int(ch) if ch.isdigit() else ord(ch) - 65
            total += _CF_ODD[k] if i % 2 == 0 else k
        return chr(65 + total % 26) == s[15]
    if re.fullmatch(r"[12]\d{14}", s):
        return 97 - int(s[:13]) % 97 == int(s[13:])
    if re.fullmatch(r"\d{9}", s):  # BSN (11-proof) or SIN (Luhn)
        bsn = sum(int(c) * w for c, w in zip(s, (9, 8, 7, 6, 5, 4, 3, 2, -1), strict=True))
        return s[0] != "0" and (bsn % 11 == 0 or luhn(s))
    if re.fullmatch(r"[2-9]\d{11}", s):
        return _verhoeff(s)
    return False


def email(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    return 0 < len(local) <= 64 and ".." not in value and not domain.startswith(("-", ".")) and \
        domain.rsplit(".", 1)[-1].isalpha()


_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")  # no numbering plan groups a phone number 3-2-4
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}")


#: Regions tried for a number written in national format: the lexicon's locales' countries.
PHONE_REGIONS = tuple(dict.fromkeys(loc.split("_")[1] for loc in lexicon.LOCALES if loc != "ar_AA"))


# compiled once: phone() runs per distinct candidate value; re.split/fullmatch look up their cache per call
_EXTENSION = re.compile(r"(?i)\s*(?:x|ext\.?)\s*\d+$")
_DOTTED = re.compile(r"\d+(\.\d+){1,3}")
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")


def _parses(number: str, region: str | None, *, strict: bool) -> bool:
    """Valid (``strict``: the numbering plan assigns it) or possible (a length the region dials)."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) if strict else phonenumbers.is_possible_number(parsed)


def phone(value: str) -> bool:
    """A number ``phonenumbers`` accepts: with ``+`` or ``00``, a possible number of its country; in
    national format, valid in one of :data:`PHONE_REGIONS` (possible is enough after a trunk prefix 0).

    Faker's numbers often break their numbering plans, and so do people's, hence "possible" where the
    writer says the region. Dates, decimals, IPv4 and SSN shapes are refused first; so are bare digit
    runs other than a NANP number, a national number after its trunk prefix 0, or a Chinese mobile
    number (``1[3-9]`` and nine digits): bare ids are not phones."""
    core = _EXTENSION.split(value.strip())[0]
    d = digits(core)
    if not 7 <= len(d) <= 15 or _DATE_LIKE.fullmatch(core) or _SSN_SHAPE.fullmatch(core) or len(set(d)) < 3:
        return False
    if _DOTTED.fullmatch(core) and core.count(".") != 2:
        return False  # decimals, IPv4
    if core.isdigit() and not ((len(d) == 10 and d[0] in "23456789" and d[3] in "23456789") or
                               (d[0] == "0" and d[1] != "0" and 9 <= len(d) <= 11) or
                               _CN_MOBILE.fullmatch(d)):
        return False
    if core.startswith("00"):
        core = "+" + core[2:]
    if core.startswith("+"):  # the country code says where: a length that country dials is enough
        return _parses(core, None, strict=False)
    if len(d) < 8:  # seven digits with a dash are postcodes (096-7993, 5066-907), not whole numbers
        return False
    trunk = core.lstrip("(").startswith("0")  # a trunk prefix: written for dialling within the country
    return any(_parses(core, region, strict=not trunk) for region in PHONE_REGIONS)


def ip_address(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return not ip.is_unspecified and str(ip) not in ("255.255.255.255",)


def mac_address(value: str) -> bool:
    hexes = re.sub(r"[^0-9A-Fa-f]", "", value).lower()
    return len(hexes) == 12 and hexes not in ("000000000000", "ffffffffffff") and len(set(hexes)) > 2


def geo_coordinates(value: str) -> bool:
    nums = re.findall(r"-?\d+(?:\.\d+)?", value)
    try:
        if value.upper().startswith("POINT"):
            lon, lat = float(nums[0]), float(nums[1])
        elif len(nums) == 2:
            lat, lon = float(nums[0]), float(nums[1])
        elif len(nums) == 1:
            return abs(float(nums[0])) <= 180 and len(nums[0].partition(".")[2]) >= 3
        else:
            return False
    except (IndexError, ValueError):
        return False
    return abs(lat) <= 90 and abs(lon) <= 180 and not (lat == 0 and lon == 0)


def shannon(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values()) if n else 0.0


_HEX = re.compile(r"[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _b64json(part: str) -> object:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt(value: str) -> bool:
    try:
        header = _b64json(value.split(".")[0])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and ("alg" in header or "typ" in header)


def secret(value: str) -> bool:
    """A high-entropy token: mixed character classes, ≥ 3.5 bits/char, not hex, not a UUID, not words."""
    v = value.strip()
    if len(v) > 256:
        return False
    if v.count(".") == 2 and v.startswith("eyJ"):
        return jwt(v)
    if _HEX.fullmatch(v) or _UUID.fullmatch(v) or " " in v:
        return False
    classes = sum((any(c.islower() for c in v), any(c.isupper() for c in v), any(c.isdigit() for c in v)))
    return classes >= 2 and shannon(v) >= 3.5


def oauth_token(value: str) -> bool:
    v = value.strip()
    if v.lower().startswith("bearer "):
        v = v[7:].strip()
    if v.startswith("eyJ"):
        return jwt(v)
    return secret(v.split("|", 1)[-1].split(".", 1)[-1])


def password_hash(value: str) -> bool:
    """Modular-crypt and framework formats; bare hex digests count only through field-name context."""
    return value.startswith("$") or "$" in value[:20] or bool(_HEX.fullmatch(value))


_TOKEN_SPLIT = re.compile(r"[\s,.;:/()\"]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def _letters(token: str) -> bool:
    """Letters and the marks that belong to them (Thai and Devanagari vowel signs are marks, not
    letters: ``str.isalpha`` alone refuses most words of those scripts); ' and - inside names."""
    core = token.replace("-", "").replace("'", "").replace("’", "")
    return bool(core) and unicodedata.category(core[0])[0] == "L" and \
        all(unicodedata.category(c)[0] in "LM" for c in core)


def _name_tokens(value: str) -> list[str]:
    """Words of a name, normalised, without titles and suffixes (Dr, Jr, Г-н, الأستاذ …)."""
    affixes = words.NAME_AFFIXES
    toks = [lexicon.normal(t).strip("'-") for t in _TOKEN_SPLIT.split(value) if t]
    return [t for t in toks if t and _letters(t) and t not in affixes]


def _known(token: str, names: frozenset[str]) -> bool:
    """A token, or any part of a hyphenated one (Bevan-Smith, Jean-Paul), is in the list."""
    return token in names or any(part in names for part in token.split("-") if part)


def _capitalised(value: str) -> bool:
    """No word starts in lower case (scripts without case pass: Arabic, Hebrew, CJK, Thai)."""
    return not any(t[:1].islower() for t in value.replace(",", " ").split() if len(t) > 3 and _letters(t))


def _cjk_name(value: str) -> bool:
    """A CJK name written without a space: a known family name (one or two characters), then one to
    three characters — a known given name, or any when the family name is long enough to be telling."""
    if not 2 <= len(value) <= 4 or not _CJK.fullmatch(value):
        return False
    for k in (2, 1):
        family, given = value[:k], value[k:]
        if family in words.LAST_NAMES and 1 <= len(given) <= 3 and \
                (given in words.FIRST_NAMES or (len(given) <= 2 and given not in words.CITIES)):
            return True
    return False


NAME_CHARS = 80  # longer is no name or place: and a 100 MB value must cost nothing here


def first_name(value: str) -> bool:
    if len(value) > NAME_CHARS:
        return False
    toks = _name_tokens(value)
    return len(toks) == 1 and _known(toks[0], words.FIRST_NAMES)


def last_name(value: str) -> bool:
    """One or two known family names (Barroso Jara), or a known one of several words (آل بن لافي)."""
    if len(value) > NAME_CHARS:
        return False
    if lexicon.normal(value) in words.LAST_NAMES:
        return True
    toks = _name_tokens(value)
    return 1 <= len(toks) <= 2 and all(_known(t, words.LAST_NAMES) for t in toks)


def person_name(value: str) -> bool:
    """Two to four words, none starting in lower case, in either order: given then family name
    (Jane Doe), family then given (Сазонов Арсений, 木村 陽一), or "Doe, Jane"; or a CJK name written
    without a space (梁鑫)."""
    if len(value) > NAME_CHARS:
        return False
    if " " not in value.strip():
        return _cjk_name(value.strip())
    if not _capitalised(value):
        return False
    if "," in value:  # "Last, First"
        last, _, first = value.partition(",")
        value = f"{first} {last}"
    toks = _name_tokens(value)
    if not 2 <= len(toks) <= 4 or len(toks) != len(value.split()) - _affixes(value):
        return False
    given, family = words.FIRST_NAMES, words.LAST_NAMES
    return _known(toks[0], given) or _known(toks[-1], family) or \
        (_known(toks[0], family) and _known(toks[1], given))


def _affixes(value: str) -> int:
    return sum(1 for t in _TOKEN_SPLIT.split(value) if t and lexicon.normal(t).strip("'-") in words.NAME_AFFIXES)


_VERSION = re.compile(r"[vV]?\d+(?:\.\d+)+(?:[-+._]?[A-Za-z]+\d*)?")


def username(value: str) -> bool:
    """A handle: no spaces, not a capitalised word (that is a name), and either a personal-name
    fragment at its start or end, or letters mixed with digits or separators like people use."""
    if len(value) > 32 or (value.isupper() and any(c.isdigit() for c in value)):
        return False  # SERIAL-LIKE: upper case letters and digits are device or order ids, not handles
    if value[:1].isupper() and value[1:].islower() and value.isalpha():
        return False
    if _VERSION.fullmatch(value):
        return False  # a firmware or software version (v2.4.17, 1.2.3-beta), not a handle
    v = value.lstrip("@").lower()
    parts = [p for p in re.split(r"[._\-\d]+", v) if p]
    if not parts:
        return False
    for p in parts:
        up = p.upper()
        if len(p) >= 3 and (up in words.FIRST_NAMES or up in words.LAST_NAMES):
            return True
        for k in range(4, min(len(p), 12) + 1):
            if up[:k] in words.FIRST_NAMES or up[-k:] in words.LAST_NAMES:
                return True
    return any(c.isdigit() for c in v) and any(c.isalpha() for c in v) and len(v) <= 24


def city(value: str) -> bool:
    """A known city (geonames, Faker), optionally after a locale's prefix word (г., thành phố) or before
    its suffix (县, 市); else a capitalised place name with a place-name prefix, joint or ending."""
    v = value.strip()
    if len(v) > NAME_CHARS:
        return False
    n = lexicon.normal(v)
    lex = lexicon.load()
    if n in words.CITIES:
        return True
    head, _, rest = n.partition(" ")
    if rest and (head.rstrip(".") in lex.city_prefixes or head.rstrip(".") in words.PLACE_PREFIXES) and \
            rest in words.CITIES:
        return True
    if _CJK.fullmatch(n):
        return any(n.endswith(s) and n[:-len(s)] in words.CITIES for s in lex.city_suffixes if not s.isascii())
    # a locale's composed names: "Aragão de Goiás", "Novais da Serra", "Vasconcelos Alegre"
    if rest and not v[:1].islower() and any(n.endswith(" " + s) for s in lex.city_suffixes if not s.startswith("-")):
        return True
    toks = v.split()
    if not 1 <= len(toks) <= 4 or not all(t[:1].isupper() for t in toks):
        return False
    if len(toks) > 1 and toks[0].upper().rstrip(".") in words.PLACE_PREFIXES:
        return True
    if any(infix in v for infix in words.PLACE_INFIXES) or v.upper().startswith(("SAINT-", "SAINTE-")):
        return True
    return toks[-1].lower().endswith(words.PLACE_SUFFIXES)


_WORDS = re.compile(r"[\s,.;:/#№()\-]+")
_DIGITS = "0123456789"


def street_address(value: str) -> bool:
    """A street type of some locale and a house number: the type a separate word (rue, calle, ул.,
    Nr., 號), or glued to the name (Hauptstraße, Furuvägen, 天母巷, ถนนนครเทพ); the number may be missing
    after a type that opens the street (Strada Niță, Via Roma). Else a known street name with a number
    where a locale writes no type (he_IL)."""
    v = value.strip()
    if len(v) > 100:
        return False
    toks = lexicon.street_tokens(v)
    named = [t for t in toks if _letters(t)]
    if not named or len(named) > 10 or len(named) < len(toks):
        return False
    lex = lexicon.load()
    cjk = bool(_CJK.search(v))  # written without spaces: 天母巷2號
    if not cjk and not any(c.isspace() for c in v):  # an identifier (5fe3c0a1de…, c.csv): no words, no street
        return False
    if cjk and any(e in v for e in lex.street_endings if not e.isascii()):
        return True
    if not any(c.isdigit() for c in v):  # "Strada Niță": a word of its own, then a name
        return len(named) >= 2 and named[0] in lex.street_leads and \
            (len(named[0]) >= 3 or not named[0].isascii()) and named[0] not in words.FIRST_NAMES
    # a street type written as a word stands between separators, a number at most on one side (סמ3), never
    # inside a run of letters and digits (hex: 5fe3c0)
    whole = named if cjk else [lexicon.normal(w) for w in (w.strip(_DIGITS) for w in _WORDS.split(v)) if _letters(w)]
    if len(named) >= 2 and any(w in lex.street_words for w in whole):
        return True
    ends, leads, bare = _street_affixes(lex)
    for t in whole:  # a type glued on with two letters or more beside it: t[2:] ends with it, t[:-2] opens with it
        if t[2:].endswith(ends) or t[:-2].startswith(leads) or (bare and len(t) >= 2):
            return True
    return " ".join(named) in lex.streets


_AFFIXES: list[tuple[lexicon.Lexicon, tuple[tuple[str, ...], tuple[str, ...], bool]]] = []


def _street_affixes(lex: lexicon.Lexicon) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """The lexicon's street endings and non-ASCII leads as tuples for one C-level ``endswith`` /
    ``startswith`` each (a generator over them per token was most of a scan's validator time, h8),
    and whether an empty ending is listed (it glues onto any token of two letters). Kept for the last
    lexicon seen, by identity."""
    if not _AFFIXES or _AFFIXES[0][0] is not lex:
        found = (tuple(e for e in lex.street_endings if e),
                 tuple(e for e in lex.street_leads if e and not e.isascii()), "" in lex.street_endings)
        _AFFIXES[:] = [(lex, found)]
    return _AFFIXES[0][1]


def gender(value: str) -> bool:
    return value.strip().lower() in words.GENDERS


def birth_date(value: str) -> bool:
    """A calendar date (no time of day) in a year people alive now were born in."""
    years = re.findall(r"(?:19|20)\d\d", value)
    if not years:
        return False
    y = int(years[0])
    return 1900 <= y <= date.today().year - 10


def wifi_ssid(value: str) -> bool:
    """The pattern did the work; an SSID is at most 32 bytes (IEEE 802.11)."""
    return 1 <= len(value.encode()) <= 32


def device_serial(value: str) -> bool:
    v = value.replace("-", "").replace("_", "")
    return len(v) <= 24 and any(c.isdigit() for c in v) and sum(c.isalpha() for c in v) >= 2 and len(set(v)) >= 5


def postal_code(value: str) -> bool:
    """Not all zeros; a code with letters matches some country's format (geonames)."""
    d = digits(value)
    if d and d == "0" * len(d):
        return False
    compact = value.replace(" ", "").upper()
    if compact.isdigit() or "-" in value:
        return True
    return any(rx.fullmatch(compact) or rx.fullmatch(value.upper()) for rx in _postcode_formats())


@functools.cache
def _postcode_formats() -> tuple[re.Pattern[str], ...]:
    out = []
    for rx in lexicon.load().postcodes:
        try:
            out.append(re.compile(rx))
        except re.error:
            continue  # geonames writes a few in another dialect; the shapes they cover are in the pattern
    return tuple(out)
