"""An OpenSearch (Elasticsearch) index mapping as native types, and ``_source`` values rendered
canonically for them.

The mapping says what a field is whatever the documents spell: ``ip`` → IP, ``geo_point`` → geo,
``date``/``date_nanos`` → timestamp, ``keyword``/``text`` → text, the integer types → integer, the
float types → float, ``boolean``, ``binary`` (https://opensearch.org/docs/latest/field-types/).

A ``geo_point`` may be indexed from an object ``{"lat": …, "lon": …}``, a ``"lat,lon"`` string, a
``[lon, lat]`` array, a WKT ``POINT (lon lat)`` or a geohash; each becomes one ``lat,lon`` text (an
array of points one such text per point), so the field is one value, not two paths ``loc.lat`` and
``loc.lon``. A ``date`` given as a number (``epoch_millis``, the default format's second half, or
``epoch_second`` where the mapping's format starts with it) becomes ISO 8601 in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from piiguard.classify.types import Kind, NativeType
from piiguard.connectors.base import MAX_DEPTH
from piiguard.connectors.labels import label

KINDS = {"ip": Kind.IP, "geo_point": Kind.GEO_POINT, "date": Kind.TIMESTAMP, "date_nanos": Kind.TIMESTAMP,
         "boolean": Kind.BOOLEAN, "binary": Kind.BINARY,
         **dict.fromkeys(("keyword", "text", "wildcard", "constant_keyword", "match_only_text",
                          "search_as_you_type"), Kind.TEXT),
         **dict.fromkeys(("long", "integer", "short", "byte", "unsigned_long"), Kind.INTEGER),
         **dict.fromkeys(("float", "double", "half_float", "scaled_float"), Kind.FLOAT)}
GEOHASH = "0123456789bcdefghjkmnpqrstuvwxyz"
_WKT = re.compile(r"(?i)\s*POINT\s*\(\s*(\S+)\s+(\S+)\s*\)\s*")
_NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"\s*({_NUMBER})\s*,\s*({_NUMBER})\s*")


def mapped_types(properties: Mapping[str, Any], prefix: str = "", out: dict[str, NativeType] | None = None,
                 depth: int = 0) -> dict[str, NativeType]:
    """Leaf field → native type, by field path without ``[]`` (keys labelled, as documents' are)."""
    out = {} if out is None else out
    for key, spec in properties.items():
        if not isinstance(spec, Mapping) or depth >= MAX_DEPTH:
            continue
        path = f"{prefix}.{label(str(key))}" if prefix else label(str(key))
        children = spec.get("properties")
        if isinstance(children, Mapping):
            mapped_types(children, path, out, depth + 1)
        elif (kind := KINDS.get(str(spec.get("type")))) is not None:
            out.setdefault(path, NativeType(str(spec["type"]), kind))
    return out


def typed(columns: Mapping[str, Any], types: Mapping[str, NativeType]) -> dict[str, NativeType]:
    """Each field path of a batch (``devices[].ip``) with its mapped type, an array where it went
    through one."""
    out = {}
    for path in columns:
        native = types.get(path.replace("[]", ""))
        if native is not None:
            out[path] = NativeType(native.name, native.kind, "[]" in path)
    return out


def render(doc: Any, properties: Mapping[str, Any], depth: int = 0) -> Any:
    """A ``_source`` with its geo points and numeric dates in canonical text (a new object; the
    fields the mapping does not type as those are as they were)."""
    if depth >= MAX_DEPTH:
        return doc
    if isinstance(doc, list):
        return [render(item, properties, depth + 1) for item in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    for key, value in doc.items():
        spec = properties.get(key)
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        if kind == "geo_point":
            value = geo(value)
        elif kind in ("date", "date_nanos"):
            value = _dates(value, str(spec.get("format", "")) if isinstance(spec, Mapping) else "")
        elif isinstance(spec, Mapping) and isinstance(spec.get("properties"), Mapping):
            value = render(value, spec["properties"], depth + 1)
        out[key] = value
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _point(lat: Any, lon: Any) -> str | None:
    la, lo = _number(lat), _number(lon)
    return None if la is None or lo is None else f"{la!r},{lo!r}"


def geo(value: Any) -> Any:
    """One geo point (or a list of them) as ``lat,lon`` text; a value in no form of a point as it was."""
    if isinstance(value, dict) and "lat" in value and "lon" in value:
        return _point(value["lat"], value["lon"]) or value
    if isinstance(value, list):
        if 2 <= len(value) <= 3 and all(_number(v) is not None and not isinstance(v, str) for v in value):
            return _point(value[1], value[0])  # GeoJSON order: [lon, lat(, z)]
        return [geo(v) for v in value]
    if isinstance(value, str):
        if m := _PAIR.fullmatch(value):
            return _point(m[1], m[2]) or value
        if m := _WKT.fullmatch(value):
            return _point(m[2], m[1]) or value
        return _geohash(value) or value
    return value


def _geohash(text: str) -> str | None:
    """A geohash's centre, rounded to the cell's precision; None for a text that is not one."""
    if not 1 <= len(text) <= 12 or any(c not in GEOHASH for c in text.lower()):
        return None
    lat, lon = [-90.0, 90.0], [-180.0, 180.0]
    even = True
    for c in text.lower():
        bits = GEOHASH.index(c)
        for shift in range(4, -1, -1):
            box = lon if even else lat
            mid = (box[0] + box[1]) / 2
            box[0 if bits >> shift & 1 else 1] = mid
            even = not even
    digits = max(1, min(6, len(text) // 2 + 1))
    return f"{round((lat[0] + lat[1]) / 2, digits)!r},{round((lon[0] + lon[1]) / 2, digits)!r}"


def _dates(value: Any, fmt: str) -> Any:
    if isinstance(value, list):
        return [_dates(v, fmt) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    seconds = value if fmt.split("||")[0].strip() == "epoch_second" else value / 1000
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return value
