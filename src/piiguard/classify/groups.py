"""Collection-level judgement: fields decided together with their neighbours.

A column alone can be ambiguous where its neighbours are not: a latitude beside a longitude, a given
name beside a family name, a street beside a city and a postcode, the unique id of a collection of
people (not of events), and a country column that tells the locale of the rest. :func:`judge` runs
after every field of a collection is decided (:meth:`piiguard.classify.engine.Classifier.decide`)
and may revise them; each revision says so in its :class:`piiguard.model.Evidence`
(``decided_by="group"``, the rule in ``detector``, why in ``notes``).

Neighbours are the fields in the collection's order (a table's columns, a file's header). Rules
read only the fields' running counts (:class:`piiguard.classify.engine.FieldState`): shares,
numeric ranges, decimals, name words — never a value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from piiguard.classify.engine import CUSTOMER_ID, FREE_TEXT, FieldState
from piiguard.classify.types import Kind
from piiguard.model import Classification, Evidence

GEO = "geo-coordinates"
FIRST, LAST = "first-name", "last-name"
STREET, CITY, POSTCODE = "street-address", "city", "postal-code"
ADDRESS = (STREET, CITY, POSTCODE)
#: Types a repeated value of means one person on many rows (an event table's person key).
PERSON_KEYS = (CUSTOMER_ID, "email", "username", "phone", "person-name", "ip-address", "device-serial",
               "mac-address")
LAT_WORDS = frozenset({"lat", "latitude", "breite", "breitengrad", "latitud", "latitudine"})
LON_WORDS = frozenset({"lon", "lng", "long", "longitude", "laenge", "lange", "longitud", "longitudine"})
GEO_WORDS = LAT_WORDS | LON_WORDS | {"geo", "location", "coords", "coordinates", "position"}
#: Types that describe a person (not a device or a network): a table without any is telemetry, whose key
#: identifies readings, not people.
PERSON_ATTRIBUTES = frozenset({FIRST, LAST, "person-name", "email", "phone", STREET, CITY, POSTCODE, "birth-date",
                               "gender", "username", "national-id", "us-ssn", "iban", "credit-card",
                               "personal-media-url", "password-hash", "oauth-token", "api-key"})
#: Words of a key's name that say its rows are events (``event_id``, ``log_seq``, ``txn_id``).
EVENT_WORDS = frozenset({"event", "events", "evt", "log", "seq", "sequence", "audit", "activity", "click",
                         "hit", "message", "msg", "txn", "transaction", "request", "req", "trace", "span",
                         "reading", "sample", "measurement", "metric", "ping", "heartbeat"})
MIN_DECIMALS = 3  # degrees to 3 decimals place a point within ~100 m; prices and rates have two
WEAK = 0.8  # a confidence below this is strengthened by a group that agrees


def judge(fields: list[Classification], states: dict[str, FieldState],
          primary_key: Sequence[str]) -> list[Classification]:
    """The collection's fields after the group rules; the input order is kept."""
    out = list(fields)
    st = [states[f.field] for f in out]
    _coordinates(out, st)
    _names(out, st)
    _address_block(out, st)
    out = _customer_key(out, states, primary_key)
    _country_locale(out, [states[f.field] for f in out])
    return out


def _revised(f: Classification, pii_type: str | None, confidence: float, rule: str, why: str,
             share: float | None = None) -> Classification:
    """``f`` as the group decided it; a changed type keeps the field's own decision as the runner-up."""
    old = f.evidence or Evidence()
    changed = pii_type != f.pii_type
    evidence = dataclasses.replace(
        old, decided_by="group", detector=rule, share=share if share is not None else old.share,
        runner_up=(f.pii_type or "none") if changed else old.runner_up,
        runner_up_share=old.share if changed else old.runner_up_share,
        lost_because=f"{rule}: {why}" if changed else old.lost_because, notes=(*old.notes, why))
    return dataclasses.replace(f, pii_type=pii_type, confidence=round(confidence, 3),
                               reason="; ".join(r for r in (f.reason, why) if r), evidence=evidence)


def _share(st: FieldState, pii_type: str) -> float:
    return st.valid.get(pii_type, 0) / max(1, st.non_null)


# --- latitude and longitude --------------------------------------------------------------------------

def _degrees(st: FieldState) -> tuple[bool, bool] | None:
    """Whether a numeric column fits a latitude, a longitude (both may); None when it is no angle in
    degrees: too few numbers, whole numbers, few decimals, or the same few values repeated."""
    num = st.numbers
    if st.non_null < 5 or num.count < 0.95 * st.non_null or num.mean_decimals < MIN_DECIMALS:
        return None
    if st.native is not None and st.native.kind not in (Kind.FLOAT, Kind.DECIMAL, Kind.TEXT, Kind.UNKNOWN):
        return None
    if st.stats_distinct < 0.3 * max(1, st.stats_seen):
        return None
    return abs(num.low) <= 90 and abs(num.high) <= 90, abs(num.low) <= 180 and abs(num.high) <= 180


def _named_pairs(st: list[FieldState], fits: list[tuple[bool, bool] | None]) -> list[tuple[int, int]]:
    """``home_lat`` / ``home_lon``: one says latitude, the other longitude, the rest of the names agree."""
    lat: dict[frozenset[str], int] = {}
    lon: dict[frozenset[str], int] = {}
    for i, s in enumerate(st):
        words = set(s.tokens)
        if fits[i] is not None and words & LAT_WORDS:
            lat.setdefault(frozenset(words - LAT_WORDS), i)
        elif fits[i] is not None and words & LON_WORDS:
            lon.setdefault(frozenset(words - LON_WORDS), i)
    return sorted((lat[k], lon[k]) for k in lat.keys() & lon.keys())


#: Words of a field name that say nothing of what it holds (``c01``, ``col_3``, ``field7``).
NEUTRAL_WORDS = frozenset({"col", "column", "field", "fld", "value", "val", "var", "attr", "data", "num"})


def _says_nothing_else(st: FieldState) -> bool:
    """Whether a field's name leaves it free to be a coordinate: obfuscated (``c07``), generic, or
    geographic. ``temperature`` beside ``humidity`` or ``x_offset`` beside ``y_offset`` are numbers in
    degree ranges too, but their names say what they are."""
    return all(len(t) <= 2 or t.isdigit() or t in NEUTRAL_WORDS or t in GEO_WORDS or t in LAT_WORDS
               or t in LON_WORDS for t in st.tokens)


def _coordinates(out: list[Classification], st: list[FieldState]) -> None:
    """Two numeric columns in degree ranges with similar precision (three or more decimals), named as a
    pair or adjacent, are both geo; a lone number column named nothing of the kind is never geo."""
    fits = [_degrees(s) if out[i].pii_type in (None, GEO) else None for i, s in enumerate(st)]
    named = _named_pairs(st, fits)
    adjacent = [(i, i + 1) for i in range(len(out) - 1) if fits[i] is not None and fits[i + 1] is not None
                and _says_nothing_else(st[i]) and _says_nothing_else(st[i + 1])]
    paired: set[int] = set()
    for i, j in named + adjacent:
        fit_i, fit_j = fits[i], fits[j]
        if i in paired or j in paired or fit_i is None or fit_j is None:
            continue
        if not ((fit_i[0] and fit_j[1]) or (fit_j[0] and fit_i[1])):
            continue
        if abs(st[i].numbers.mean_decimals - st[j].numbers.mean_decimals) > 2:
            continue
        how = "named as a latitude/longitude pair" if (i, j) in named else "adjacent"
        for k, other in ((i, j), (j, i)):
            why = (f"with {out[other].field!r} a latitude/longitude pair ({how}, degree ranges, "
                   f"{st[k].numbers.mean_decimals:.1f} decimals)")
            share = round(st[k].numbers.count / max(1, st[k].non_null), 4)
            out[k] = _revised(out[k], GEO, max(out[k].confidence, 0.85), "lat-lon-pair", why, share)
        paired |= {i, j}
    for i, f in enumerate(out):
        if f.pii_type == GEO and i not in paired and not set(st[i].tokens) & GEO_WORDS and \
                st[i].numbers.count >= 0.95 * max(1, st[i].non_null):
            out[i] = _revised(f, None, 0.0, "lat-lon-pair", "a lone number column with no coordinate name")


# --- first and last names ----------------------------------------------------------------------------

def _name_like(f: Classification, st: FieldState) -> bool:
    return f.pii_type in (None, FIRST, LAST) and max(_share(st, FIRST), _share(st, LAST)) >= 0.3 and \
        not st.prose and (st.stats_distinct >= 50 or st.stats_distinct >= 0.2 * max(1, st.stats_seen))


def _named(f: Classification) -> bool:
    """Decided by a detector whose name context agreed: the field's name says which it is."""
    return f.pii_type in (FIRST, LAST) and f.evidence is not None and bool(f.evidence.context)


def _names(out: list[Classification], st: list[FieldState]) -> None:
    """A given name beside a family name: two adjacent name-like columns are first and last (in the order
    their dictionary hits favour, first then last on a tie), and a weak decision beside its partner is
    strengthened."""
    i = 0
    while i + 1 < len(out):
        a, b = out[i], out[i + 1]
        if not (_name_like(a, st[i]) and _name_like(b, st[i + 1])):
            i += 1
            continue
        if _named(a) and a.pii_type is not None:
            roles = (a.pii_type, LAST if a.pii_type == FIRST else FIRST)
        elif _named(b) and b.pii_type is not None:
            roles = (LAST if b.pii_type == FIRST else FIRST, b.pii_type)
        else:
            forward = _share(st[i], FIRST) + _share(st[i + 1], LAST)
            backward = _share(st[i], LAST) + _share(st[i + 1], FIRST)
            roles = (FIRST, LAST) if forward >= backward else (LAST, FIRST)
        for k, role, other in ((i, roles[0], i + 1), (i + 1, roles[1], i)):
            f = out[k]
            if f.pii_type == role and f.confidence >= WEAK:
                continue
            word = "family" if role == FIRST else "given"
            why = f"beside {out[other].field!r}, a {word} name column: {role} ({_share(st[k], role):.0%} in its list)"
            conf = min(0.95, max(f.confidence + 0.15, 0.75)) if f.pii_type == role else 0.75
            out[k] = _revised(f, role, conf, "first-last-names", why, round(_share(st[k], role), 4))
        i += 2


# --- address blocks ----------------------------------------------------------------------------------

def _postcode_shaped(st: FieldState) -> bool:
    """Whole numbers of one width, four to six digits, most of them distinct: a postcode's shape."""
    num = st.numbers
    return st.non_null >= 5 and num.count >= 0.95 * st.non_null and num.integral == num.count and \
        num.digits_low >= 4 and num.digits_high <= 6 and num.digits_high - num.digits_low <= 1


def _address_role(f: Classification, st: FieldState) -> tuple[str, bool] | None:
    """The part of an address a field is, and whether it was decided so on its own (else it only leans)."""
    if f.pii_type in ADDRESS:
        return f.pii_type, True
    if f.pii_type in (None, FREE_TEXT) and _share(st, STREET) >= 0.2:
        return STREET, False  # a street is never free text inside an address block
    if f.pii_type is None and _share(st, CITY) >= 0.3:
        return CITY, False
    if f.pii_type is None and (_share(st, POSTCODE) >= 0.3 or _postcode_shaped(st)):
        return POSTCODE, False
    return None


def _address_block(out: list[Classification], st: list[FieldState]) -> None:
    """Street, city and postcode side by side (one other column between them allowed) strengthen each
    other: a block of two of the parts, one decided on its own, or of all three, decides the rest."""
    roles = [_address_role(f, s) for f, s in zip(out, st, strict=True)]
    i = 0
    while i < len(out):
        if roles[i] is None:
            i += 1
            continue
        block = [i]
        j = i + 1
        while j < len(out) and (roles[j] is not None or (j + 1 < len(out) and roles[j + 1] is not None)):
            if roles[j] is not None:
                block.append(j)
            j += 1
        parts = {roles[k][0] for k in block}  # type: ignore[index]
        agreed = len(parts) == 3 or any(roles[k][1] for k in block)  # type: ignore[index]
        if len(parts) >= 2 and agreed and len(block) == len(parts):
            names = ", ".join(repr(out[k].field) for k in block)
            for k in block:
                role, decided = roles[k]  # type: ignore[misc]
                if decided and out[k].confidence >= WEAK:
                    continue
                why = f"part of an address block ({names})"
                conf = min(0.95, out[k].confidence + 0.1) if decided else 0.7
                out[k] = _revised(out[k], role, conf, "address-block", why, round(_share(st[k], role), 4))
        i = j


# --- a country column ----------------------------------------------------------------------------

def _country_locale(out: list[Classification], st: list[FieldState]) -> None:
    """A column whose values name countries tells the locale of the rest: its leading countries (ISO
    codes with their shares of rows, those of a fifth or more) are noted on the collection's PII fields.
    A column of many countries, none leading, tells no locale."""
    for i, s in enumerate(st):
        c = s.countries
        if s.non_null < 10 or c.count < 0.9 * s.non_null:
            continue
        top = sorted(c.codes.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        told = ", ".join(f"{code} {rows / c.count:.0%}" for code, rows in top if rows >= 0.2 * c.count)
        if not told:
            continue
        note = f"locale told by country column {out[i].field!r}: {told}"
        for k, f in enumerate(out):
            if k != i and f.pii_type is not None and f.evidence is not None:
                noted = dataclasses.replace(f.evidence, notes=(*f.evidence.notes, note))
                out[k] = dataclasses.replace(f, evidence=noted)
        return


# --- the customer key --------------------------------------------------------------------------------

def _events(fields: list[Classification], states: dict[str, FieldState], key: str) -> str | None:
    """Why the collection's rows are events rather than people (a timestamp column, and a person key
    that repeats or a ``key`` named for events), or None."""
    stamped = next((f.field for f in fields if (s := states[f.field]).non_null and (
        (s.native is not None and s.native.kind is Kind.TIMESTAMP) or s.numbers.timestamps >= 0.9 * s.non_null)),
        None)
    if stamped is None:
        return None
    if EVENT_WORDS.intersection(states[key].tokens):
        return f"rows are events (timestamp column {stamped!r}; the key {key!r} is named for events)"
    if not any(f.pii_type in PERSON_ATTRIBUTES for f in fields):
        return f"rows are events (timestamp column {stamped!r}; devices and addresses, no person's attributes)"
    repeats = next((f.field for f in fields if f.pii_type in PERSON_KEYS and (s := states[f.field]).stats_seen >= 10
                    and s.stats_distinct / s.stats_seen < 0.9), None)
    if repeats is None:
        return None
    return f"rows are events (timestamp column {stamped!r}; {repeats!r} repeats across rows)"


def _customer_key(fields: list[Classification], states: dict[str, FieldState],
                  primary_key: Sequence[str]) -> list[Classification]:
    """In a collection that holds PII but no named customer key, its unique id column (the primary key,
    or else the first column) is the key that links the records to people — unless the rows are events,
    whose unique id is an event's, not a person's."""
    if not any(f.pii_type for f in fields if f.field.lower() != "id") or any(f.pii_type == CUSTOMER_ID for f in fields):
        return fields
    order = [f.field for f in fields]
    candidates = [k for k in primary_key if k in states] if len(primary_key) == 1 else []
    if not candidates and order:
        candidates = [order[0]]
    out = list(fields)
    for name in candidates:
        events = _events(fields, states, name)
        st = states[name]
        i = order.index(name)
        # A key named plainly ``id`` whose values look like handles (``cust-00001``) is the key, not a username.
        unclaimed = out[i].pii_type is None or (out[i].pii_type == "username" and name.lower() == "id")
        if not (unclaimed and st.stats_seen and st.id_shaped / st.stats_seen >= 0.95 and
                st.stats_distinct / max(1, st.stats_seen) >= 0.98):
            continue
        if events is not None:
            if out[i].pii_type is None:
                out[i] = _revised(out[i], None, 0.0, "event-table", f"not the customer key: {events}")
            continue
        why = "unique id of a collection holding PII"
        out[i] = dataclasses.replace(
            out[i], pii_type=CUSTOMER_ID, confidence=0.7, matched=st.id_shaped, reason=why,
            evidence=Evidence(decided_by="column-key", share=round(st.id_shaped / st.stats_seen, 4),
                              native_type=out[i].native_type,
                              kind=st.native.kind.value if st.native else None, notes=(why,)))
    return out
