"""What a field's native type says about its PII type (:mod:`piiguard.classify.types`).

:func:`candidates` adds the types a native type settles by itself (``inet`` of host addresses is an
IP address whatever the field is called; ``geo_point`` is geo; ``macaddr`` is a MAC); :func:`allows`
vetoes what a native type rules out (a timestamp is never free text; a ``cidr`` of networks is not a
person's address; a boolean holds no identifier; a date or integer year is a birth date only by name
or by distribution).

:class:`Numbers` is the numeric view of a field the engine keeps while observing it (a number's
range and decimals, a date's year): what the year rule here and the lat/lon rule of
:mod:`piiguard.classify.groups` read; :class:`Countries` counts values that name a country (the
locale a country column tells the rest of its collection). Counts and bounds only, never a value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from piiguard.classify.types import NOT_TEXT, Kind, NativeType
from piiguard.registry import driver

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc

    from piiguard.classify.engine import Candidate, FieldState
else:
    pa = driver("pyarrow")
    pc = driver("pyarrow.compute")

BIRTH_DATE = "birth-date"
FREE_TEXT = "free-text-pii"
NUMBER = r"^[+-]?\d{1,18}(?:\.\d{1,18})?$"
YEAR = r"^\d{4}"
TIMESTAMP_TEXT = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d"
#: Birth years of living people on file: older ones are history, younger ones are not customers yet.
BIRTH_YEARS = (1900, 2015)
DATED = frozenset({Kind.DATE, Kind.TIMESTAMP})

#: Types a kind settles, and the only ones it leaves possible.
SETTLES = {Kind.IP: "ip-address", Kind.MAC: "mac-address", Kind.GEO_POINT: "geo-coordinates"}
ONLY: dict[Kind, frozenset[str]] = {
    Kind.IP: frozenset({"ip-address"}),
    Kind.MAC: frozenset({"mac-address"}),
    Kind.GEO_POINT: frozenset({"geo-coordinates"}),
    Kind.NETWORK: frozenset(),  # a network (cidr) is many hosts, not a person's address
    Kind.BOOLEAN: frozenset(),  # two values identify no one
    Kind.TIME: frozenset(),
    Kind.INTERVAL: frozenset(),
    Kind.DATE: frozenset({BIRTH_DATE}),
    Kind.TIMESTAMP: frozenset({BIRTH_DATE}),
}
# Words for "birth" in field names. ASCII ones are matched as name tokens (short) or inside the joined
# name (long); the others inside the raw name, since name tokens keep ASCII letters only.
_BIRTH_TOKENS = ("dob", "yob", "born", "birth", "birthday", "birthdate", "birthyear", "dateofbirth", "geburt",
                 "geburtsdatum", "geburtstag", "geburtsjahr", "nacimiento", "naissance", "nascita", "geboorte",
                 "geboortedatum", "fodelse", "urodzenia", "nascimento")
_BIRTH_SCRIPTS = ("född", "рожд", "出生", "生年月日", "誕生", "ميلاد", "doğum")


@dataclass
class Numbers:
    """Running numeric view of a field: numbers as numbers, dates and timestamps as their year.

    ``decimals`` sums the digits after the point, ``digits_low``/``digits_high`` bound the length of
    the numbers (a postcode is fixed-width), ``timestamps`` counts values shaped like a timestamp."""

    count: int = 0
    integral: int = 0
    low: float = math.inf
    high: float = -math.inf
    total: float = 0.0
    squares: float = 0.0
    decimals: int = 0
    digits_low: float = math.inf
    digits_high: float = 0
    timestamps: int = 0

    def update(self, uniques: pa.Array, weights: pa.Array, native: NativeType | None) -> None:
        """Add one batch's distinct values (strings), each weighted by its count."""
        dated = native is not None and native.kind in DATED
        if dated or native is None or native.kind is Kind.TEXT:
            self.timestamps += _weighted(weights, pc.match_substring_regex(uniques, TIMESTAMP_TEXT))
        text = pc.utf8_slice_codeunits(uniques, 0, 4) if dated else uniques
        mask = pc.match_substring_regex(text, YEAR if dated else NUMBER)
        text, w = text.filter(mask), weights.filter(mask)
        if len(text) == 0:
            return
        nums = pc.cast(text, pa.float64())
        n = _weighted(w, None)
        lengths = pc.utf8_length(pc.replace_substring_regex(text, r"^[+-]|\.\d*$", ""))
        dot = pc.find_substring(text, ".")
        after = pc.if_else(pc.less(dot, 0), 0, pc.subtract(pc.subtract(pc.utf8_length(text), dot), 1))
        bounds = pc.min_max(nums).as_py()
        digits = pc.min_max(lengths).as_py()
        self.count += n
        self.integral += _weighted(w, pc.equal(after, 0))
        self.low, self.high = min(self.low, bounds["min"]), max(self.high, bounds["max"])
        wf = pc.cast(w, pa.float64())
        self.total += float(pc.sum(pc.multiply(nums, wf)).as_py())
        self.squares += float(pc.sum(pc.multiply(pc.multiply(nums, nums), wf)).as_py())
        self.decimals += _weighted(w, after)
        self.digits_low, self.digits_high = min(self.digits_low, digits["min"]), max(self.digits_high, digits["max"])

    @property
    def mean_decimals(self) -> float:
        return self.decimals / max(1, self.count)

    @property
    def spread(self) -> float:
        """Standard deviation of the numbers (or years)."""
        if self.count == 0:
            return 0.0
        mean = self.total / self.count
        return math.sqrt(max(0.0, self.squares / self.count - mean * mean))


@cache
def _country_names() -> tuple[pa.Array, pa.Array]:
    """Country names (English), ISO 3166 alpha-2 and alpha-3 codes, lower case, and the alpha-2 code of
    each — from Faker's country table, loaded on first use."""
    from faker.providers.date_time import Provider

    keys: dict[str, str] = {}
    for c in Provider.countries:
        for spelling in (c.name, c.alpha_2_code, c.alpha_3_code):
            keys.setdefault(spelling.casefold(), c.alpha_2_code)
    return pa.array(list(keys)), pa.array(list(keys.values()))


@dataclass
class Countries:
    """How many values name a country, and which countries (ISO alpha-2 code → rows)."""

    count: int = 0
    codes: dict[str, int] = field(default_factory=dict)

    def update(self, uniques: pa.Array, weights: pa.Array) -> None:
        names, codes = _country_names()
        at = pc.index_in(pc.utf8_lower(uniques), names)
        hit = pc.is_valid(at)
        if not pc.any(hit).as_py():
            return
        found = pc.take(codes, at.filter(hit))
        for code, rows in zip(found.to_pylist(), weights.filter(hit).to_pylist(), strict=True):
            self.codes[code] = self.codes.get(code, 0) + rows
            self.count += rows


def _weighted(weights: pa.Array, values: pa.Array | None) -> int:
    if values is None:
        return int(pc.sum(weights).as_py() or 0)
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int64())
    return int(pc.sum(pc.multiply(values, weights)).as_py() or 0)


def birth_by_name(state: FieldState) -> bool:
    compact = "".join(state.tokens)
    raw = state.name.casefold()
    return any(w in state.tokens or (len(w) >= 5 and w in compact) for w in _BIRTH_TOKENS) or \
        any(w in raw for w in _BIRTH_SCRIPTS)


def ages_spread(state: FieldState) -> bool:
    """Years within :data:`BIRTH_YEARS`, spread over decades as a population's ages are; event dates
    cluster in recent years, which this range excludes."""
    num = state.numbers
    if state.non_null == 0 or num.count < 0.95 * state.non_null or num.count < 10:
        return False
    if state.native is not None and state.native.kind not in DATED and num.integral < num.count:
        return False
    return num.low >= BIRTH_YEARS[0] and num.high <= BIRTH_YEARS[1] and num.high - num.low >= 15 and num.spread >= 5


def _birth(state: FieldState) -> bool:
    return birth_by_name(state) or ages_spread(state)


def candidates(state: FieldState) -> list[Candidate]:
    """Types the field's native type supports on its own."""
    from piiguard.classify.engine import Candidate  # engine imports this module: the class is defined by now

    native = state.native
    if native is None or state.non_null == 0:
        return []
    kind = native.kind
    pii_type = SETTLES.get(kind)
    if pii_type is not None:
        share = state.valid.get(pii_type, 0) / state.non_null
        if kind is Kind.IP and share < 0.5:
            return []  # an inet column of networks (10.0.0.0/24): not people's addresses, as cidr is not
        return [Candidate(pii_type, 0.95, "native-type", round(share, 4), (), f"native type {native.name}",
                          90, None)]
    if kind in DATED or (kind is Kind.INTEGER and state.numbers.count):
        named = birth_by_name(state)
        if named or ages_spread(state):
            years = state.numbers
            share = round(years.count / state.non_null, 4)
            why = (f"native type {native.name}, name says birth" if named else
                   f"native type {native.name}, years spread over {years.high - years.low:.0f} like ages")
            return [Candidate(BIRTH_DATE, 0.85 if named else 0.7, "native-type", share,
                              state.tokens if named else (), why, 60, None)]
    return []


def allows(native: NativeType | None, candidate: Candidate, state: FieldState) -> bool:
    """Whether the native type leaves this candidate possible."""
    if native is None:
        return True
    kind = native.kind
    if candidate.pii_type == FREE_TEXT and kind in NOT_TEXT:
        return False
    only = ONLY.get(kind)
    if only is not None and candidate.pii_type not in only:
        return False
    if candidate.pii_type == BIRTH_DATE and (kind in DATED or kind is Kind.INTEGER):
        return _birth(state)
    return True
