"""Value-only decisions across the lexicon's locales and scripts.

For each Faker locale the lexicon is built from, a seeded column of each type under an obfuscated
name (``c07``) must be decided as that type from its values alone; columns of decoy words (colours,
months, weekdays, countries, statuses, brands, booleans, in several languages) must get no name or
place type. Held-out locales (docs/benchmark.md) are not used here.
"""

from __future__ import annotations

import importlib.util
import time

import pytest
from faker import Faker
from helpers import classify
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.classify import lexicon
from piiguard.classify import validators as v

KINDS = {"first-name": "first_name", "last-name": "last_name", "person-name": "name", "city": "city",
         "street-address": "street_address", "postal-code": "postcode", "phone": "phone_number"}
ADDRESS = {"city", "street-address", "postal-code"}
# What a locale's generator makes that no value-only rule can tell, each with the reason.
UNDECIDABLE = {
    ("vi_VN", "first-name"): "Faker's vi_VN draws from a few dozen names: as repetitive as an enum",
    ("vi_VN", "last-name"): "Faker's vi_VN has ten family names: as repetitive as an enum",
    ("hi_IN", "street-address"): "hi_IN streets are a number and a person's name, with no street type",
}
# Postcodes that are bare digit runs other than five (or 000-0000) are decided only with a name.
NAMED_POSTCODES = {"pt_BR", "ru_RU", "ja_JP", "zh_CN", "zh_TW", "he_IL", "hi_IN", "ro_RO"}


def column(locale: str, method: str, n: int = 80) -> list[str]:
    fake = Faker(locale)
    fake.seed_instance(7)
    return [getattr(fake, method)() for _ in range(n)]


def _has_address(locale: str) -> bool:
    """A locale without its own address provider falls back to en_US (tr_TR, ar_*, bg_BG): not its data."""
    return importlib.util.find_spec(f"faker.providers.address.{locale}") is not None


def _cases() -> list[object]:
    out = []
    for loc in lexicon.LOCALES:
        for pii_type, method in KINDS.items():
            if pii_type in ADDRESS and not _has_address(loc):
                continue
            if (loc, pii_type) in UNDECIDABLE:
                continue
            field = "postcode" if pii_type == "postal-code" and loc in NAMED_POSTCODES else "c07"
            out.append(pytest.param(loc, pii_type, method, field, id=f"{loc}-{pii_type}"))
    return out


@pytest.mark.parametrize(("locale", "pii_type", "method", "field"), _cases())
def test_value_only(locale: str, pii_type: str, method: str, field: str) -> None:
    got = classify(field, column(locale, method))  # type: ignore[arg-type]
    assert got.pii_type == pii_type, (got.pii_type, got.reason)


def test_twenty_locales_four_scripts() -> None:
    assert len(lexicon.LOCALES) >= 20
    words = lexicon.load().first_names
    scripts = {"latin": "MARIA", "cyrillic": "АРСЕНИЙ", "cjk": "陽一", "arabic": "محمود", "hebrew": "עומרי",
               "devanagari": "मोहना"}
    assert {s for s, w in scripts.items() if w in words} == set(scripts)


def test_no_held_out_locale_or_generator() -> None:
    held_out = {"cs", "da", "fi", "hu", "no", "sk", "et", "hr", "uk", "kk", "el", "fa", "ko"}
    assert not {loc.split("_")[0] for loc in lexicon.LOCALES} & held_out
    assert "mimesis" not in {s.lower() for s in lexicon._SOURCES}


def test_cached_lexicon_loads_fast() -> None:
    lexicon.load()  # built or read once
    lexicon.load.cache_clear()
    start = time.perf_counter()
    lexicon.load()
    assert time.perf_counter() - start < 1.0


DECOYS: dict[str, list[str]] = {
    "colours-en": ["Brown", "Green", "White", "Black", "Gray", "Silver", "Rose", "Violet", "Olive", "Amber",
                   "Ivory", "Hazel", "Coral", "Ruby", "Jade", "Scarlett", "Pearl", "Jasmine", "Sienna", "Blue"],
    "colours-de-fr-es": ["Rot", "Blau", "Grün", "Gelb", "Schwarz", "Weiß", "Rouge", "Bleu", "Vert", "Jaune", "Noir",
                         "Blanc", "Rojo", "Azul", "Verde", "Amarillo", "Negro", "Blanco", "Rosa", "Morado"],
    "colours-ru": ["Красный", "Синий", "Зелёный", "Жёлтый", "Чёрный", "Белый", "Розовый", "Серый", "Фиолетовый",
                   "Оранжевый", "Голубой", "Коричневый"],
    "months": ["January", "February", "March", "April", "May", "June", "July", "August", "Januar", "Februar",
               "März", "Juni", "Juli", "janvier", "février", "mars", "avril", "mai", "juin", "Enero", "Febrero",
               "Marzo", "Abril", "Mayo", "Junio", "Январь", "Февраль", "Март", "Апрель"],
    "weekdays": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Montag",
                 "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag", "lundi", "mardi",
                 "mercredi", "jeudi", "vendredi", "Lunes", "Martes", "Miércoles", "Jueves", "Viernes"],
    "countries": ["Germany", "France", "Spain", "Italy", "Brazil", "Portugal", "Netherlands", "Poland", "Sweden",
                  "Turkey", "Russia", "Japan", "China", "Taiwan", "Israel", "India", "Indonesia", "Vietnam",
                  "Thailand", "Romania", "Bulgaria", "Jordan", "Chad", "Georgia", "Ireland", "Canada"],
    "status": ["active", "inactive", "pending", "closed", "Aktiv", "Inaktiv", "Offen", "Geschlossen", "actif",
               "fermé", "annulé", "activo", "cerrado", "pendiente", "attivo", "chiuso", "Активен", "Закрыт",
               "Новый", "aberto", "fechado", "otwarty", "zamknięty"],
    "booleans": ["True", "False", "TRUE", "FALSE", "true", "false", "Yes", "No", "Ja", "Nein", "Oui", "Non",
                 "Sí", "Да", "Нет"],
    "brands-products": ["Indoor Cam 2K", "Solar Panel", "Video Doorbell", "Base Station", "Smart Lock",
                        "Floodlight Cam", "Chime Pro", "Echo Dot", "Fire TV Stick", "Galaxy Buds", "Pixel Watch",
                        "Nest Hub", "AirPods Pro", "Kindle Paperwhite", "Apple Watch", "Philips Hue",
                        "Ring Doorbell", "Sonos One", "Roku Ultra"],
}
NAME_TYPES = {"first-name", "last-name", "person-name", "city", "street-address", "username"}


@pytest.mark.parametrize("name", sorted(DECOYS))
def test_decoys_are_not_names_or_places(name: str) -> None:
    values = [DECOYS[name][i % len(DECOYS[name])] for i in range(60)]
    got = classify("c07", values)  # type: ignore[arg-type]
    assert got.pii_type not in NAME_TYPES, (got.pii_type, got.reason)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_validators_never_raise(text: str) -> None:
    for check in (v.first_name, v.last_name, v.person_name, v.city, v.street_address, v.postal_code, v.phone):
        assert isinstance(check(text), bool)


@pytest.mark.parametrize("size", [81, 10_000_000])
def test_overlong_values_are_no_names_or_places(size: int) -> None:
    value = "Anna" + "a" * (size - 4)
    for check in (v.first_name, v.last_name, v.person_name, v.city, v.street_address):
        assert not check(value)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=999_999_900))
def test_counters_are_not_phones(start: int) -> None:
    """Counters and surrogate keys up to nine digits are bare digit runs with no trunk prefix: however
    many regions phonenumbers would accept them in, a column of them is not phones."""
    got = classify("c07", [str(start + i) for i in range(40)])  # type: ignore[arg-type]
    assert got.pii_type != "phone"


@pytest.mark.parametrize("value", ["096-7993", "5066-907", "27-097", "20240115", "3.14159", "10.0.0.1"])
def test_postcodes_dates_and_decimals_are_not_phones(value: str) -> None:
    assert not v.phone(value)
