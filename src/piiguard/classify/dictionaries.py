"""Word lists the validators consult.

Personal names: the US Census 1990 name files shipped by the ``names`` package on PyPI (1,219 male
and 4,275 female first names, 88,799 surnames) joined with the names of 25 Faker locales
(:mod:`piiguard.classify.lexicon`). Place names: geonames' cities of more than 15,000 people with
their alternate names, Faker's city lists, and the English, German and French place-name prefixes
and suffixes (-ton, -ville, -burgh …). Street suffixes: USPS Publication 28 for the pattern, each
locale's street types for the validator.

``DECOYS`` are the vocabularies a column of names or places is most often confused with: colours,
months, weekdays and countries (from the lexicon), and the status words and spelt booleans below,
which no maintained package lists.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from piiguard.classify import lexicon


@cache
def _census(name: str) -> frozenset[str]:
    text = files("names").joinpath(name).read_text(encoding="ascii")
    return frozenset(line.split(None, 1)[0] for line in text.splitlines() if line.strip())


# Given names common since 1990 that the 1990 census lists miss.
EXTRA_FIRST = frozenset(["AIDEN", "AALIYAH", "ADDISON", "ALEXA", "ALEXIS", "ARIANA", "AUBREY", "AVA", "AVERY", "BRAYDEN", "BRIANNA", "BROOKLYN", "CADEN", "CAMERON", "CHLOE", "DAKOTA", "DESTINY", "DYLAN", "ELIJAH", "ETHAN", "GABRIELLA", "HAILEY", "HAYDEN", "ISAIAH", "ISABELLA", "JADA", "JADEN", "JAYDEN", "JOCELYN", "JORDAN", "KAITLYN", "KAYLA", "KAYLEE", "KYLIE", "LANDON", "LOGAN", "MACKENZIE", "MADISON", "MAKAYLA", "MASON", "MIA", "MORGAN", "NEVAEH", "NOAH", "OLIVIA", "PAIGE", "PEYTON", "RILEY", "SAVANNAH", "SKYLER", "SYDNEY", "TAYLOR", "TREVOR", "TRINITY", "TYLER", "ZOE", "CODY", "BRANDON", "AUSTIN", "DUSTIN", "CHASE", "HUNTER", "GAVIN", "COLTON", "CONNOR", "JACE", "KAYDEN", "LIAM", "ZACHARY", "ZAYDEN", "MAYA", "LUNA"])

_AFFIXES = frozenset(["MR", "MRS", "MS", "MISS", "DR", "PROF", "SIR", "MX", "JR", "SR", "II", "III", "IV", "MD", "DDS", "PHD", "DVM"])

PLACE_PREFIXES = frozenset(["BAD", "SAINTE", "SANKT", "NEU", "ALT", "NORTH", "SOUTH", "EAST", "WEST", "NEW", "LAKE", "PORT", "FORT", "MOUNT", "MT", "SAINT", "ST", "SAN", "SANTA", "LOS", "LAS", "EL", "LA", "LE", "GRAND", "UPPER", "LOWER", "GREAT", "LITTLE", "OLD"])
PLACE_SUFFIXES = ("town", "ton", "land", "ville", "berg", "burg", "burgh", "borough", "boro", "bury",
                  "view", "port", "mouth", "stad", "furt", "chester", "caster", "cester", "fort", "haven",
                  "side", "shire", "field", "ford", "ham", "wick", "wich", "by", "thorpe", "dale",
                  "heim", "hausen", "dorf", "stadt", "polis", "city", "springs", "falls", "heights", "hurst",
                  # German and French place-name endings
                  "ingen", "ach", "au", "bach", "feld", "hain", "roda", "busch", "stedt", "leben", "brück",
                  "brücken", "tal", "see", "bourg", "court", "mont", "val", "bühl", "hagen", "münde", "rode",
                  "ow", "itz", "witz", "zig", "lar", "les-bains")
PLACE_INFIXES = ("-sur-", "-en-", "-lès-", "-les-", "-le-", "-la-", " am ", " an der ", " im ", " ob der ",
                 "-sous-", "-de-")

GENDERS = frozenset([
    "m", "f", "male", "female", "man", "woman", "boy", "girl", "non-binary", "nonbinary", "non binary",
    "genderqueer", "genderfluid", "agender", "transgender", "trans man", "trans woman", "two-spirit",
    "intersex", "other", "x", "unknown", "unspecified", "undisclosed", "prefer not to say",
    "prefer_not_to_say", "not specified", "diverse", "divers", "männlich", "weiblich", "homme", "femme",
    "hombre", "mujer", "masculino", "femenino",
    # the tuning side's languages (docs/benchmark.md: no held-out language is added here)
    "masculin", "féminin", "feminin", "mann", "frau", "maschio", "femmina", "maschile", "femminile",
    "uomo", "donna", "vrouw", "kvinna", "kobieta", "mężczyzna", "męski", "żeński", "kadın", "erkek",
    "kadin", "мужской", "женский", "мужчина", "женщина", "муж", "жен", "м", "ж", "男", "女", "男性", "女性",
    "ذكر", "أنثى", "انثى", "رجل", "امرأة", "זכר", "נקבה", "पुरुष", "महिला",
])

STREET_SUFFIXES = """Alley|Aly|Anex|Arcade|Avenue|Ave|Av|Bayou|Beach|Bend|Bluffs?|Bottom|Boulevard|Blvd|Branch|
Bridge|Brooks?|Burgs?|Bypass|Camp|Canyon|Cape|Causeway|Centers?|Circles?|Cir|Cliffs?|Club|Commons?|Corners?|
Course|Courts?|Ct|Coves?|Creek|Crescent|Cres|Crest|Crossing|Crossroad|Curve|Dale|Dam|Divide|Drives?|Dr|
Estates?|Expressway|Extensions?|Falls?|Ferry|Fields?|Flats?|Fords?|Forest|Forges?|Forks?|Fort|Freeway|
Gardens?|Gateway|Glens?|Greens?|Groves?|Harbors?|Haven|Heights|Hts|Highway|Hwy|Hills?|Hollow|Inlet|
Islands?|Isle|Junctions?|Keys?|Knolls?|Lakes?|Land|Landing|Lane|Ln|Lights?|Loaf|Locks?|Lodge|Loop|Mall|
Manors?|Meadows?|Mews|Mills?|Mission|Motorway|Mount|Mountains?|Neck|Orchard|Oval|Overpass|Parks?|
Parkways?|Pkwy|Pass|Passage|Path|Pike|Pines?|Place|Pl|Plains?|Plaza|Points?|Ports?|Prairie|Radial|Ramp|
Ranch|Rapids?|Rest|Ridges?|River|Roads?|Rd|Route|Row|Rue|Run|Shoals?|Shores?|Skyway|Springs?|Spurs?|
Squares?|Sq|Station|Stravenue|Stream|Streets?|St|Summit|Terrace|Ter|Throughway|Trace|Track|Trafficway|
Trail|Trl|Trailer|Tunnel|Turnpike|Underpass|Unions?|Valleys?|Via|Viaduct|Views?|Villages?|Ville|Vista|
Walks?|Wall|Way|Ways|Wells?|Close|Gate|Grove|Wynd|Straße|Strasse|Weg|Gasse|Platz|Calle|Avenida|Rua|Via""".replace(
    "\n", "")

# Router defaults (vendor + model/suffix) and the words people put in their own network names.
SSID_VENDORS = (
    r"NETGEAR\d{2}(?:-5G)?|TP-?Link_[0-9A-Fa-f]{4}(?:_5G)?|Linksys\d{3,5}(?:_5GHz)?|xfinitywifi|"
    r"ATT[A-Za-z0-9]{3,7}|HUAWEI-[A-Za-z0-9]{4}(?:-5G)?|SKY[A-Z0-9]{5}|BTHub\d?-[A-Z0-9]{4}|BTWi-?fi|"
    r"Vodafone-[A-Z0-9]{4,}|FRITZ!Box \d{4}(?: [A-Z]{2})?|DIRECT-\w+|eduroam|Starlink|Verizon_[A-Z0-9]{6}|"
    r"MySpectrumWiFi[0-9a-f]{2}-\dG|dlink-[A-Z0-9]{4}|ASUS(?:_[0-9A-F]{2})?(?:_5G)?|Orange-[A-Z0-9]{4}|"
    r"Livebox-[A-Z0-9]{4}|CenturyLink\d{4}|Telstra[A-Z0-9]{4}|Optus_[A-Z0-9]{5}|UPC\d{6,7}|"
    r"Ziggo\d*|Google ?WiFi|eero|Xiaomi_[A-Z0-9]{4}|Tenda_[A-Z0-9]{6}|Belkin[._][A-Z0-9]{3,4}|"
    r"2WIRE\d{3}|HOME-[A-Z0-9]{4}"
)
SSID_WORDS = (
    r"(?i:wi-?fi|wlan|wireless|5\s?ghz|[ _-]5g\b|2\.4\s?g|[ _-]2g\b|\bnet(?:work)?\b|\bhome|guest|"
    r"router|family|house|hotspot|\blan\b|\bmesh\b|_ext\b|iphone|galaxy|\bcasa\b|\bmaison\b|modem)"
)
SSID = rf"(?:{SSID_VENDORS})|[^\x00-\x1f]*{SSID_WORDS}[^\x00-\x1f]*"  # ≤ 32 bytes: the validator

MEDIA_URL = (
    r"(?i:https?://[^\s\"'<>]*(?:avatar|profile|photo|picture|/pics?/|selfie|portrait|headshot|/users?/|"
    r"/u/|/members?/|/uploads?/|/media/|gravatar)[^\s\"'<>]*"
    r"|https?://[^\s\"'<>]+\.(?:jpe?g|png|gif|webp|heic|heif|bmp|tiff?|mp4|mov|m4v|avi|webm)(?:[?#][^\s]*)?)"
)


# Status and state words (in English, German, French, Spanish, Italian, Portuguese, Dutch, Polish,
# Swedish, Russian) and booleans as spelt: an enum column, not people or places.
STATUS_WORDS = frozenset(w.upper() for w in ["active", "inactive", "pending", "closed", "open", "done", "new", "cancelled", "canceled", "blocked", "suspended", "deleted", "archived", "draft", "approved", "rejected", "failed", "paid", "unpaid", "shipped", "delivered", "returned", "true", "false", "yes", "no", "none", "null", "unknown", "enabled", "disabled", "on", "off", "ok", "error", "valid", "invalid", "aktiv", "inaktiv", "offen", "geschlossen", "neu", "storniert", "gesperrt", "gelöscht", "bezahlt", "versandt", "geliefert", "ja", "nein", "wahr", "falsch", "actif", "inactif", "ouvert", "fermé", "nouveau", "annulé", "bloqué", "supprimé", "payé", "expédié", "livré", "oui", "non", "vrai", "faux", "en", "attente", "activo", "inactivo", "abierto", "cerrado", "nuevo", "cancelado", "bloqueado", "eliminado", "pagado", "enviado", "entregado", "sí", "verdadero", "falso", "pendiente", "attivo", "inattivo", "aperto", "chiuso", "nuovo", "annullato", "bloccato", "pagato", "spedito", "consegnato", "vero", "in", "attesa", "ativo", "inativo", "aberto", "fechado", "novo", "pago", "entregue", "sim", "não", "pendente", "verdadeiro", "actief", "inactief", "gesloten", "nieuw", "geannuleerd", "betaald", "verzonden", "geleverd", "waar", "onwaar", "aktywny", "nieaktywny", "otwarty", "zamknięty", "nowy", "anulowany", "zapłacony", "wysłany", "tak", "nie", "prawda", "fałsz", "öppen", "stängd", "ny", "avbruten", "betald", "skickad", "levererad", "sant", "falskt", "активен", "активный", "неактивный", "открыт", "закрыт", "новый", "отменён", "оплачен", "отправлен", "доставлен", "да", "нет", "истина", "ложь"])


@cache
def _first_names() -> frozenset[str]:
    return _census("dist.male.first") | _census("dist.female.first") | EXTRA_FIRST | lexicon.load().first_names


@cache
def _last_names() -> frozenset[str]:
    return _census("dist.all.last") | lexicon.load().last_names


@cache
def _decoys() -> frozenset[str]:
    return lexicon.load().decoys | STATUS_WORDS


def __getattr__(name: str) -> frozenset[str]:
    """The large lists load on first use: importing the detectors must stay cheap."""
    if name == "FIRST_NAMES":
        return _first_names()
    if name == "LAST_NAMES":
        return _last_names()
    if name == "NAME_AFFIXES":
        return _AFFIXES | lexicon.load().affixes
    if name == "CITIES":
        return lexicon.load().cities
    if name == "DECOYS":
        return _decoys()
    raise AttributeError(name)
