"""Word lists the validators consult.

Personal names come from the US Census 1990 name files shipped by the ``names`` package on PyPI
(1,219 male and 4,275 female first names, 88,799 surnames) — an independent source, not the Faker
lists the benchmark generates from. Place names: a few hundred large cities plus the English
place-name prefixes and suffixes (-ton, -ville, -burgh …). Street suffixes: USPS Publication 28.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def _census(name: str) -> frozenset[str]:
    text = files("names").joinpath(name).read_text(encoding="ascii")
    return frozenset(line.split(None, 1)[0] for line in text.splitlines() if line.strip())


def _first_names() -> frozenset[str]:
    return _census("dist.male.first") | _census("dist.female.first") | EXTRA_FIRST


def _last_names() -> frozenset[str]:
    return _census("dist.all.last")


# Given names common since 1990 that the 1990 census lists miss.
EXTRA_FIRST = frozenset(["AIDEN", "AALIYAH", "ADDISON", "ALEXA", "ALEXIS", "ARIANA", "AUBREY", "AVA", "AVERY", "BRAYDEN", "BRIANNA", "BROOKLYN", "CADEN", "CAMERON", "CHLOE", "DAKOTA", "DESTINY", "DYLAN", "ELIJAH", "ETHAN", "GABRIELLA", "HAILEY", "HAYDEN", "ISAIAH", "ISABELLA", "JADA", "JADEN", "JAYDEN", "JOCELYN", "JORDAN", "KAITLYN", "KAYLA", "KAYLEE", "KYLIE", "LANDON", "LOGAN", "MACKENZIE", "MADISON", "MAKAYLA", "MASON", "MIA", "MORGAN", "NEVAEH", "NOAH", "OLIVIA", "PAIGE", "PEYTON", "RILEY", "SAVANNAH", "SKYLER", "SYDNEY", "TAYLOR", "TREVOR", "TRINITY", "TYLER", "ZOE", "CODY", "BRANDON", "AUSTIN", "DUSTIN", "CHASE", "HUNTER", "GAVIN", "COLTON", "CONNOR", "JACE", "KAYDEN", "LIAM", "ZACHARY", "ZAYDEN", "MAYA", "LUNA"])

NAME_AFFIXES = frozenset(["MR", "MRS", "MS", "MISS", "DR", "PROF", "SIR", "MX", "JR", "SR", "II", "III", "IV", "MD", "DDS", "PHD", "DVM"])

CITIES = frozenset(c.upper() for c in """New York|Los Angeles|Chicago|Houston|Phoenix|Philadelphia|San Antonio|
San Diego|Dallas|San Jose|Austin|Jacksonville|Fort Worth|Columbus|Charlotte|San Francisco|Indianapolis|
Seattle|Denver|Washington|Boston|El Paso|Nashville|Detroit|Oklahoma City|Portland|Las Vegas|Memphis|
Louisville|Baltimore|Milwaukee|Albuquerque|Tucson|Fresno|Sacramento|Kansas City|Mesa|Atlanta|Omaha|
Colorado Springs|Raleigh|Miami|Long Beach|Virginia Beach|Oakland|Minneapolis|Tulsa|Tampa|Arlington|
New Orleans|Wichita|Cleveland|Bakersfield|Aurora|Anaheim|Honolulu|Santa Ana|Riverside|Corpus Christi|
Lexington|Henderson|Stockton|Saint Paul|Cincinnati|St. Louis|Pittsburgh|Greensboro|Lincoln|Anchorage|
Plano|Orlando|Irvine|Newark|Durham|Chula Vista|Toledo|Fort Wayne|St. Petersburg|Laredo|Jersey City|
Chandler|Madison|Lubbock|Scottsdale|Reno|Buffalo|Gilbert|Glendale|North Las Vegas|Winston-Salem|
Chesapeake|Norfolk|Fremont|Garland|Irving|Hialeah|Richmond|Boise|Spokane|Baton Rouge|Tacoma|
San Bernardino|Modesto|Fontana|Des Moines|Moreno Valley|Santa Clarita|Fayetteville|Birmingham|Oxnard|
Rochester|Port St. Lucie|Grand Rapids|Huntsville|Salt Lake City|Frisco|Yonkers|Amarillo|Glendale|
Huntington Beach|McKinney|Montgomery|Augusta|Akron|Little Rock|Tempe|Columbus|Overland Park|
Grand Prairie|Tallahassee|Cape Coral|Mobile|Knoxville|Shreveport|Worcester|Ontario|Vancouver|Sioux Falls|
Chattanooga|Brownsville|Fort Lauderdale|Providence|Newport News|Rancho Cucamonga|Santa Rosa|Peoria|
Oceanside|Elk Grove|Salem|Pembroke Pines|Eugene|Garden Grove|Cary|Fort Collins|Corona|Springfield|
Jackson|Alexandria|Hayward|Clarksville|Lakewood|Lancaster|Salinas|Palmdale|Hollywood|Springfield|
Macon|Sunnyvale|Pomona|Killeen|Escondido|Pasadena|Naperville|Bellevue|Joliet|Murfreesboro|Midland|
Rockford|Paterson|Savannah|Bridgeport|Torrance|McAllen|Syracuse|Surprise|Denton|Roseville|Thornton|
Miramar|Mesquite|Olathe|Dayton|Carrollton|Waco|Orange|Fullerton|Charleston|West Valley City|Visalia|
Hampton|Gainesville|Warren|Coral Springs|Cedar Rapids|Round Rock|Sterling Heights|Kent|Columbia|
Santa Clara|New Haven|Stamford|Concord|Elizabeth|Athens|Thousand Oaks|Lafayette|Simi Valley|Topeka|
Norman|Fargo|Wilmington|Abilene|Odessa|Pearland|Victorville|Hartford|Vallejo|Allentown|Berkeley|
Richardson|Arvada|Ann Arbor|Cambridge|Sugar Land|Lansing|Evansville|College Station|Fairfield|
Clearwater|Beaumont|Independence|Provo|West Jordan|Murrieta|Palm Bay|El Monte|Carlsbad|Charleston|
Temecula|Clovis|Meridian|Westminster|Costa Mesa|High Point|Manchester|Pueblo|Lakeland|Pompano Beach|
West Palm Beach|Antioch|Everett|Downey|Lowell|Centennial|Elgin|Broken Arrow|Miami Gardens|Billings|
Jurupa Valley|Sandy Springs|Gresham|Lewisville|Hillsboro|Ventura|Greeley|Inglewood|Waterbury|League City|
Santa Maria|Tyler|Davie|Daly City|Boulder|Allen|West Covina|Sparks|Wichita Falls|Green Bay|San Mateo|
Norwalk|Rialto|Las Cruces|Chico|El Cajon|Burbank|South Bend|Renton|Vista|Davenport|Edinburg|Tuscaloosa|
Toronto|Montreal|Calgary|Ottawa|Edmonton|Winnipeg|Quebec City|Hamilton|Halifax|Victoria|
London|Manchester|Liverpool|Leeds|Sheffield|Bristol|Glasgow|Edinburgh|Cardiff|Belfast|Dublin|Cork|
Paris|Marseille|Lyon|Toulouse|Nice|Nantes|Strasbourg|Bordeaux|Lille|Berlin|Hamburg|Munich|München|
Cologne|Köln|Frankfurt|Stuttgart|Düsseldorf|Leipzig|Dresden|Hanover|Nuremberg|Vienna|Wien|Zurich|
Zürich|Geneva|Basel|Bern|Amsterdam|Rotterdam|The Hague|Utrecht|Eindhoven|Brussels|Antwerp|Ghent|
Madrid|Barcelona|Valencia|Seville|Sevilla|Zaragoza|Málaga|Bilbao|Lisbon|Lisboa|Porto|Rome|Roma|Milan|
Milano|Naples|Napoli|Turin|Torino|Palermo|Genoa|Bologna|Florence|Firenze|Venice|Copenhagen|Aarhus|
Stockholm|Gothenburg|Malmö|Oslo|Bergen|Helsinki|Espoo|Tampere|Reykjavik|Warsaw|Kraków|Łódź|Wrocław|
Gdańsk|Prague|Brno|Budapest|Bucharest|Sofia|Athens|Thessaloniki|Istanbul|Ankara|Izmir|Moscow|
Saint Petersburg|Kyiv|Kiev|Kharkiv|Minsk|Riga|Vilnius|Tallinn|Belgrade|Zagreb|Ljubljana|Bratislava|
Tokyo|Yokohama|Osaka|Nagoya|Sapporo|Kobe|Kyoto|Fukuoka|Seoul|Busan|Incheon|Beijing|Shanghai|
Guangzhou|Shenzhen|Chengdu|Wuhan|Tianjin|Hong Kong|Taipei|Singapore|Kuala Lumpur|Jakarta|Bangkok|
Manila|Hanoi|Ho Chi Minh City|Mumbai|Delhi|New Delhi|Bangalore|Bengaluru|Hyderabad|Chennai|Kolkata|
Pune|Ahmedabad|Karachi|Lahore|Dhaka|Sydney|Melbourne|Brisbane|Perth|Adelaide|Auckland|Wellington|
Christchurch|Mexico City|Guadalajara|Monterrey|Puebla|Tijuana|São Paulo|Sao Paulo|Rio de Janeiro|
Brasília|Salvador|Fortaleza|Belo Horizonte|Buenos Aires|Córdoba|Rosario|Santiago|Lima|Bogotá|Bogota|
Medellín|Cali|Caracas|Quito|Montevideo|Cairo|Lagos|Nairobi|Johannesburg|Cape Town|Durban|Casablanca|
Accra|Addis Ababa|Dubai|Abu Dhabi|Riyadh|Jeddah|Doha|Tel Aviv|Jerusalem|Tehran|Baghdad""".replace(
    "\n", "").split("|"))

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


@cache
def _first_names_cached() -> frozenset[str]:
    return _first_names()


def __getattr__(name: str) -> frozenset[str]:
    if name == "FIRST_NAMES":
        return _first_names_cached()
    if name == "LAST_NAMES":
        return _last_names()
    raise AttributeError(name)
