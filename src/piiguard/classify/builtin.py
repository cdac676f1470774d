"""The built-in PII types. One ``register(Detector(...))`` per type; the ``doc`` is what
``piiguard show detector NAME`` prints."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable

from piiguard.classify import dictionaries as words
from piiguard.classify import lexicon
from piiguard.classify import validators as v
from piiguard.classify.detectors import ColumnStats, Detector, register
from piiguard.classify.dictionaries import MEDIA_URL, SSID, STREET_SUFFIXES


def distinct_at_least(ratio: float) -> Callable[[ColumnStats], bool]:
    """A column rule: most values distinct (a handle per person, not a status enum)."""

    def rule(stats: ColumnStats) -> bool:
        return stats.distinct_ratio >= ratio or stats.non_null < 5

    return rule


def varied(stats: ColumnStats) -> bool:
    """People's names vary: a column of a few words repeated (products, colours, brands) is not people."""
    return stats.distinct >= 50 or stats.distinct_ratio >= 0.2


def few_decoys(stats: ColumnStats) -> bool:
    """Most of the column's matched words are not colours, months, weekdays, countries, status words
    or spelt booleans: "Brown, Green, White" are surnames one by one and a colour column together."""
    matched = stats.matched_values
    decoys = words.DECOYS
    return not matched or sum(lexicon.normal(m) in decoys for m in matched) / len(matched) < 0.25


def people_or_places(stats: ColumnStats) -> bool:
    """Names and places vary, and are not a vocabulary of decoy words."""
    return varied(stats) and few_decoys(stats)


def _birth_years(stats: ColumnStats) -> bool:
    """Birth dates spread over decades; event dates cluster in a few recent years."""
    years = [int(y) for s in stats.matched_values if (y := s[:4]).isdigit()] or \
            [int(s[-4:]) for s in stats.matched_values if s[-4:].isdigit()]
    if len(years) < 5:
        return True
    return max(years) - min(years) >= 15 and statistics.pstdev(years) >= 5


EMAIL = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
PHONE = r"\+?\(?\d{1,5}\)?(?:[ .-]?\(?\d{1,12}\)?){1,6}(?:\s*(?:x|ext\.?)\s*\d{1,6})?"
IPV4 = r"(?:\d{1,3}\.){3}\d{1,3}"
IPV6 = r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?|(?:[0-9A-Fa-f]{0,4}:){2,6}(?:\d{1,3}\.){3}\d{1,3}"
MAC = r"[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}"
CARD = r"\d{4}(?:[ -]?\d{2,7}){2,4}"
SSN = r"\d{3}-\d{2}-\d{4}"
IBAN = r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?"
JWT = r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
STREET = (
    # US / UK: [Flat 2b] 12 Elm Street [Apt. 4]
    r"(?:(?:Flat|Apartment|Studio|Unit|Suite)\s+\w+,?\s+(?:\d{1,6}[A-Za-z]?,?\s+)?|\d{1,6}[A-Za-z]?,?\s+)"
    r"(?:[\w.'-]+\s+){0,5}(?:"
    + STREET_SUFFIXES + r")\.?(?:,?\s+(?:Apt\.?|Suite|Ste\.?|Unit|Fl(?:oor)?\.?|#)\s*[\w-]+)?"
    # French: 17, avenue Carlier / rue de la Paix
    r"|(?:\d{1,5}(?:\s?(?:bis|ter))?,?\s+)?(?:rue|avenue|av\.|boulevard|bd|chemin|allée|allee|impasse|quai|"
    r"place|cours|route|square)\s+[^\d\n]{2,60}"
    # German: Hauptstraße 5, Ullrichring 21/43
    r"|[\w.-]*(?:straße|strasse|str\.|weg|gasse|allee|platz|ring|damm|ufer|chaussee|steig|pfad|markt)"
    r"\s+\d{1,4}[a-z]?(?:\s?[-/]\s?\d{1,4}[a-z]?)?"
)

# A letter in any script, for patterns both engines read: RE2 sees code points, Hyperscan bytes, and
# every code point or byte at or above 0x80 is kept (the validators decide what is a letter).
L = r"[^\x00-\x40\x5b-\x60\x7b-\x7f]"
_STREET_RE = re.compile(STREET, re.IGNORECASE)


def street(value: str) -> bool:
    """The English, French and German shapes of :data:`STREET`, or a street type of any locale."""
    return bool(_STREET_RE.fullmatch(value)) or v.street_address(value)


register(Detector(
    "email", """E-mail address.

    Pattern: local@domain.tld. Validated: local part ≤ 64 characters, no '..', alphabetic TLD.""",
    pattern=EMAIL, validate=v.email, context=("email", "mail", "emailaddress"), embedded=True, priority=90,
    unmistakable=True))

register(Detector(
    "phone", """Telephone number, national or international, with optional extension.

    Validated by phonenumbers: with + or 00 a possible number of its country; in national format a valid
    number of one of the lexicon's regions. Bare digit runs only as NANP, trunk-0 or Chinese mobile
    numbers; dates, decimals, postcodes and IPv4 rejected.""",
    pattern=PHONE, validate=v.phone, context=("phone", "mobile", "cell", "tel", "telephone", "msisdn", "fax"),
    embedded=True, priority=60))

register(Detector(
    "ip-address", """IPv4 or IPv6 address (of a device or a client: it identifies a household).

    Validated with the ipaddress module; the unspecified and broadcast addresses are rejected.""",
    pattern=f"{IPV4}|{IPV6}", validate=v.ip_address, context=("ip", "ipaddress", "ipv4", "ipv6", "addr"),
    embedded=True, priority=80))

register(Detector(
    "mac-address", """Hardware (MAC) address of a device, Wi-Fi BSSID included.

    Forms: aa:bb:cc:dd:ee:ff, aa-bb-…, aabb.ccdd.eeff; bare 12 hex digits only with field-name context.
    All-zero and broadcast addresses are rejected.""",
    pattern=MAC, context_pattern=r"[0-9A-Fa-f]{12}", validate=v.mac_address,
    context=("mac", "macaddress", "hwaddr", "bssid", "hardware"), embedded=True, priority=85))

register(Detector(
    "credit-card", """Payment card number (PAN).

    12–19 digits with optional separators, a known issuer prefix, and the Luhn checksum.""",
    pattern=CARD, validate=v.credit_card, context=("card", "cc", "pan", "creditcard", "cardnumber"),
    embedded=True, priority=88, unmistakable=True))

register(Detector(
    "iban", """International bank account number.

    Country code, check digits, BBAN; validated by the country's length and the ISO 13616 mod-97 check.""",
    pattern=IBAN, validate=v.iban, context=("iban", "bank", "account"), embedded=True, priority=88, unmistakable=True))

register(Detector(
    "us-ssn", """US Social Security number.

    ddd-dd-dddd; nine bare digits only with field-name context. Area 000/666/9xx, group 00 and serial
    0000 are rejected, as are well-known example numbers.""",
    pattern=SSN, context_pattern=r"\d{9}", validate=v.us_ssn, context=("ssn", "social", "socialsecurity"),
    embedded=True, priority=86, unmistakable=True))

register(Detector(
    "national-id", """National identity number outside the US.

    UK National Insurance number, Spanish DNI/NIE (check letter), Italian codice fiscale (check
    character), French NIR (mod-97 key); with field-name context also Dutch BSN (11-proof), Canadian
    SIN (Luhn) and Indian Aadhaar (Verhoeff).""",
    pattern=r"[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]|[XYZ]?\d{7,8}-?[A-Z]|[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]"
            r"|[12] ?\d{2} ?\d{2} ?\d{2} ?\d{3} ?\d{3} ?\d{2}",
    context_pattern=r"\d{9}|\d{3}[ -]\d{3}[ -]\d{3}|\d{4} ?\d{4} ?\d{4}",
    validate=v.national_id,
    context=("nationalid", "nino", "dni", "nie", "bsn", "sin", "aadhaar", "passport", "idnumber",
             "taxid", "codicefiscale", "nir", "insee", "personnummer", "national"),
    embedded=True, priority=84))

register(Detector(
    "street-address", """Street address: a house number, street name and street type, with an optional
    apartment or suite. Street types: USPS Pub. 28 suffixes, and each Faker locale's (Straße, rue,
    calle, улица, Via, 街 …), as a word or glued to the name (Hauptstraße, Furuvägen).""",
    pattern=rf"{STREET}|[^\n]*{L}[^\n]*", embedded_pattern=STREET, validate=street,
    # STREET ends in a street type, letters, so a line it matches has a letter: Hyperscan need not
    # look for it (it cost more than every other detector together, h8)
    prefilter=rf"[^\n]*{L}[^\n]*",
    context=("address", "street", "addr", "line", "addressline"), embedded=True, priority=70,
    ignore_case=True, min_share=0.75))

register(Detector(
    "postal-code", """Postal code: five digits (US ZIP and ZIP+4, and most of Europe), UK, Canadian and
    Dutch postcodes, Polish 00-000, Portuguese 0000-000, Brazilian 00000-000, Swedish and Greek 000 00;
    four, six, seven and eight bare digits and Japanese 000-0000 only with field-name context.""",
    pattern=r"\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d|\d{4} ?[A-Z]{2}"
            r"|\d{2}-\d{3}|\d{4}-\d{3}|\d{5}-\d{3}|\d{3} \d{2}",
    context_pattern=r"\d{4}|\d{6,8}|\d{3}-\d{4}", validate=v.postal_code,
    context=("zip", "zipcode", "postal", "postcode", "plz", "postalcode"), priority=40, min_share=0.9, shape_only=True))

register(Detector(
    "city", """City or town name: geonames' cities of more than 15,000 people (with their names in other
    scripts) and Faker's city lists, after a locale's prefix word (г., thành phố) or with its suffix
    (县, 市); or a capitalised place name with an English, German or French place-name prefix (North,
    Port, Bad, Sainte …), suffix (-ton, -ville, -burgh, -ingen, -bourg …) or joint (-sur-, am, -les-).""",
    pattern=rf"{L}(?:{L}|[.'’\- ])*", validate=v.city, context=("city", "town", "locality", "municipality"),
    column_rule=people_or_places, priority=35, min_share=0.6))

register(Detector(
    "first-name", """Given name: the Census 1990 first-name list, names common since, and the given
    names of 25 Faker locales in their own scripts.""",
    pattern=rf"{L}(?:{L}|['’\-])*", validate=v.first_name,
    context=("firstname", "givenname", "fname", "forename", "first"), column_rule=people_or_places,
    priority=47, min_share=0.6))

register(Detector(
    "last-name", """Family name: the Census 1990 surname list (88,799 names) and the family names of 25
    Faker locales in their own scripts; double names (Barroso Jara) too.""",
    pattern=rf"{L}(?:{L}|['’\- ])*", validate=v.last_name,
    context=("lastname", "surname", "familyname", "lname", "last"), column_rule=people_or_places,
    priority=45, min_share=0.6))

register(Detector(
    "person-name", """Full personal name in either order, titles and suffixes allowed ("Dr. Jane Q. Doe
    Jr.", "Doe, Jane", "Сазонов Арсений Дмитриевич", "木村 陽一"), or a CJK name without a space (梁鑫).""",
    pattern=rf"{L}(?:{L}|[.,'’\- ])+", validate=v.person_name,
    context=("name", "fullname", "displayname", "contact", "owner", "holder", "recipient", "customer"),
    column_rule=people_or_places, priority=55, min_share=0.7))

register(Detector(
    "username", """Username, nickname or handle: a token without spaces that contains a personal name
    fragment or mixes letters and digits; most values distinct (not a status enum).""",
    pattern=r"@?[A-Za-z][A-Za-z0-9._\-]{2,}", validate=v.username,
    context=("username", "user", "login", "handle", "nickname", "nick", "screenname", "alias"),
    column_rule=distinct_at_least(0.5), priority=30, min_share=0.7, shape_only=True))

register(Detector(
    "birth-date", """Date of birth: a calendar date without a time of day, years spread over decades
    (event dates cluster in a few recent years); a bare year (``1975``) only with field-name context.""",
    pattern=r"(?:19|20)\d\d-[01]?\d-[0-3]?\d|[0-3]?\d[./-][01]?\d[./-](?:19|20)\d\d|[01]?\d/[0-3]?\d/(?:19|20)\d\d",
    context_pattern=r"(?:19|20)\d\d", validate=v.birth_date, column_rule=_birth_years,
    context=("birth", "dob", "yob", "birthday", "birthdate", "dateofbirth", "born"), priority=60))

register(Detector(
    "gender", """Gender or sex, from a vocabulary of common values in several languages.""",
    pattern=rf"{L}(?:{L}|[ _\-]){{0,20}}", validate=v.gender, context=("gender", "sex"),
    priority=65, min_share=0.95, ignore_case=True, vocabulary=True))

register(Detector(
    "geo-coordinates", """Geographic coordinates of a person or device: "lat, lon" pairs and WKT points;
    single decimal degrees only with field-name context.""",
    pattern=r"-?\d{1,2}\.\d{3,}\s*[,; ]\s*-?\d{1,3}\.\d{3,}|POINT\s*\(\s*-?\d{1,3}\.\d+\s+-?\d{1,2}\.\d+\s*\)",
    context_pattern=r"-?\d{1,3}\.\d{3,}", validate=v.geo_coordinates,
    context=("lat", "lon", "lng", "latitude", "longitude", "geo", "location", "coords", "coordinates",
             "position"), embedded=True, priority=75, ignore_case=True))

register(Detector(
    "wifi-ssid", """Wi-Fi network name (SSID): router defaults (NETGEAR42, TP-Link_4A2B, xfinitywifi …) and
    the words people use in their own ("Smith Family WiFi", "Home_5G").""",
    pattern=SSID, validate=v.wifi_ssid,
    context=("ssid", "wifi", "wlan", "networkname", "wireless"), column_rule=distinct_at_least(0.1),
    priority=52, min_share=0.6))

register(Detector(
    "device-serial", """Device serial number: 8–24 letters and digits (upper case, optional dashes), most
    values distinct — one per device.""",
    pattern=r"[A-Z0-9]{2,8}(?:-[A-Z0-9]{2,8}){1,3}|[A-Z0-9]{8,}", validate=v.device_serial,
    context=("serial", "serialnumber", "sn", "sno", "deviceid", "imei", "hwid"),
    column_rule=distinct_at_least(0.9), priority=42, min_share=0.9, shape_only=True))

register(Detector(
    "personal-media-url", """URL of a person's photo, avatar or video: an image/video file, or a path with
    avatar/profile/photo/users; most values distinct (product images repeat).""",
    pattern=MEDIA_URL, validate=None,
    context=("avatar", "photo", "picture", "profilepic", "selfie", "image", "thumbnail"),
    column_rule=distinct_at_least(0.5), priority=58, min_share=0.8, ignore_case=True))

register(Detector(
    "oauth-token", """OAuth access, refresh or ID token: JWTs (header decoded), Google ya29./1//, Amazon
    Atza|/Atzr| (Alexa), bearer values; other high-entropy values with token context.""",
    pattern=rf"{JWT}|ya29\.[A-Za-z0-9_-]{{20,}}|1//[A-Za-z0-9_-]{{20,}}|Atz[ar]\|[A-Za-z0-9_/+=-]{{20,}}"
            r"|[Bb]earer\s+[A-Za-z0-9._~+/-]{20,}=*|gh[ou]_[A-Za-z0-9]{36}",
    context_pattern=r"[A-Za-z0-9._~+/=|-]{20,}", validate=v.oauth_token,
    context=("token", "accesstoken", "refreshtoken", "oauth", "bearer", "idtoken", "sessiontoken", "jwt",
             "grant"), embedded=True, priority=87, unmistakable=True))

register(Detector(
    "api-key", """API key or other secret: known prefixes (sk_live_, AKIA, AIza, ghp_, xoxb-) and generic
    high-entropy strings (≥ 24 characters, mixed classes, ≥ 3.5 bits/char, not hex, not a UUID).""",
    pattern=r"(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}"
            r"|gh[psr]_[A-Za-z0-9]{36}|xox[abposr]-[A-Za-z0-9-]{10,}|[A-Za-z0-9_+/=-]{24,}",
    validate=v.secret, context=("apikey", "key", "secret", "credential", "clientsecret", "privatekey"),
    column_rule=distinct_at_least(0.9), priority=82))

register(Detector(
    "password-hash", """Password hash: bcrypt, argon2, scrypt, sha-crypt, md5-crypt, PBKDF2/Django;
    unsalted hex digests (MD5/SHA) only in a field whose name says password.""",
    pattern=r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$argon2(?:id|i|d)\$[^\s]{20,}|\$[56]\$[^\s]{20,}"
            r"|\$1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}|\$(?:scrypt|7|pbkdf2[-\w]*|sha1)\$[^\s]{20,}"
            r"|(?:pbkdf2_sha\d+|argon2|bcrypt_sha256|sha1|md5)\$[^\s]{20,}",
    context_pattern=r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}|[0-9a-fA-F]{128}",
    validate=v.password_hash, context=("password", "passwd", "pwd", "pass", "passhash", "pwhash"),
    priority=89, unmistakable=True))

register(Detector(
    "customer-identifier", """The key that links records to a person: customer, user, account or member
    id. Found by field-name context with id-shaped values, or as the unique id column (primary key
    or first column) of a collection that holds other PII.""",
    context_pattern=r"\d{1,20}|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
                    r"|[A-Za-z]{2,8}[_-][A-Za-z0-9]{4,32}",
    context=("customerid", "userid", "accountid", "memberid", "subscriberid", "clientid", "uid", "cid",
             "customer", "user", "account", "member", "subscriber", "owner", "personid", "profileid",
             "customerno", "customernumber"),
    priority=20, min_share=0.9))

register(Detector(
    "free-text-pii", """Free text (notes, comments, messages) whose values contain other PII: e-mail
    addresses, phone numbers, street addresses, card numbers, IBANs, identity numbers, IP or MAC
    addresses, tokens. Flagged when any value carries one.""",
    context=("note", "notes", "comment", "comments", "message", "remarks", "memo", "body", "feedback",
             "description", "text", "details"),
    priority=10))
