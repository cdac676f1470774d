"""The configuration's schema, as far as plugins define it: their names and their typed options.

:mod:`piiguard.config` checks the fixed parts of ``piiguard.yaml`` (stores, detectors, alerts); the
parts whose names and options come from plugins (engines, check ids, maskers and their options,
responders and their options, notices) are checked against a :class:`PluginSchema` built from the
registries (:func:`piiguard.plugins.schema`). Every load path (``validate``, ``scan``, ``check``,
``watch``, ``copy``, ``incident``) reads the file through the same
:func:`piiguard.cli.common.read_config`, so a kill-switch typo is found by ``validate``, not in the
middle of an incident.

A plugin's options are a frozen dataclass; :func:`option_problems` holds YAML to its fields: unknown
keys (with a did-you-mean), missing required fields, and values of the wrong type, each as
``path: problem`` and never quoting a value.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Union

Problem = Callable[[str, str], None]


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(kind: str, name: object, known: Iterable[str]) -> str:
    """``unknown masker 'psuedonym' (did you mean 'pseudonym'?)``, else the list of known names."""
    names = sorted(known)
    hint = did_you_mean(name, names)
    if not hint:
        hint = f" (known: {', '.join(names)})" if len(names) <= 30 else f" (see `piiguard list`; {len(names)} known)"
    return f"unknown {kind} {str(name)!r}{hint}"


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_*@/-][A-Za-z0-9_.*@/-]*")


def key_path(path: str, key: object) -> str:
    """``stores[0].port``; a key that is empty, not a string or holds odd characters is quoted: ``stores[0]['']``."""
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path or '(top)'}[{key!r}]"


def unknown_keys(data: Mapping[Any, Any], allowed: Iterable[str], path: str, problem: Problem) -> None:
    """Each key not in ``allowed`` is a problem at its path, with the closest allowed key."""
    allowed = set(allowed)
    for key in data:
        if key not in allowed:
            problem(key_path(path, key), f"unknown key{did_you_mean(key, allowed)}")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin in (tuple, list, frozenset, set):
        return "a list"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "a mapping"
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def type_ok(value: Any, tp: Any) -> bool:
    """Whether a YAML value fits a dataclass field's type (bool is not a number; a number is not a string)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in (tuple, list, frozenset, set):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return isinstance(value, list | tuple) and all(type_ok(v, args[0]) for v in value) if args else \
            isinstance(value, list | tuple)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return isinstance(value, Mapping)
    return True  # a type this checker does not know: the dataclass itself decides


def nested(tp: Any) -> type | None:
    """The dataclass ``D`` of an option typed ``Mapping[str, D]`` (a table of sub-options, e.g. one
    entry per OAuth provider), else None."""
    if typing.get_origin(tp) in (dict, Mapping):
        args = typing.get_args(tp)
        if len(args) == 2 and dataclasses.is_dataclass(args[1]) and isinstance(args[1], type):
            return args[1]
    return None


def option_problems(cls: type, raw: Mapping[Any, Any], where: str) -> list[str]:
    """Every problem of ``raw`` as options for the dataclass ``cls``, each as ``path: problem``; an
    option typed ``Mapping[str, D]`` has each of its entries checked as ``D``'s options, at its path."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    out = []
    for key in raw:
        if key not in fields:
            hint = did_you_mean(key, fields) or f" (known: {', '.join(fields) or 'none'})"
            out.append(f"{key_path(where, key)}: unknown option{hint}")
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                out.append(f"{key_path(where, name)}: required")
        elif not type_ok(raw[name], hints.get(name, Any)):
            out.append(f"{key_path(where, name)}: expected {_describe(hints.get(name, Any))}")
        elif (sub := nested(hints.get(name, Any))) is not None:
            for key, value in raw[name].items():
                here = key_path(key_path(where, name), key)
                if isinstance(key, bool) or not isinstance(key, str | int) or key == "":
                    out.append(f"{here}: expected a name (or a number)")
                elif not isinstance(value, Mapping):
                    out.append(f"{here}: expected a mapping of options")
                else:
                    out += option_problems(sub, value, here)
    return out


def build_options(cls: type, raw: Mapping[Any, Any]) -> Any:
    """The dataclass from options that passed :func:`option_problems` (YAML lists become tuples)."""
    hints = _hints(cls)
    values = {}
    for k, v in raw.items():
        sub = nested(hints.get(k))
        if sub is not None:
            # keys as text: a provider column may hold numbers, which YAML reads as int keys
            v = types.MappingProxyType({str(name): build_options(sub, entry) for name, entry in v.items()})
        elif typing.get_origin(hints.get(k)) is tuple and isinstance(v, list):
            v = tuple(v)
        values[k] = v
    return cls(**values)


@dataclass(frozen=True)
class PluginSchema:
    """What the registered plugins accept. ``None`` means "not known here: not checked"."""

    engines: frozenset[str] | None = None
    check_ids: frozenset[str] | None = None
    maskers: Mapping[str, type] | None = None  # masker name → its Options dataclass
    responders: Mapping[str, type] | None = None  # responder kind → its Options dataclass
    notices: Callable[[], type] | None = None  # returns respond.notices' Options dataclass (imported when needed)
    responder_engines: Mapping[str, tuple[str, ...]] | None = None  # responder kind → engines its store may be
    extra: Mapping[str, Any] = field(default_factory=dict)


RESPOND_KEYS = ("responders", "notices", "contact", "scope")
CONTACT_KEYS = ("name", "email")
MASK_RULE_KEYS = ("mask", "waiver")


def _options(cls: type, raw: Mapping[Any, Any], where: str, problem: Problem) -> bool:
    problems = option_problems(cls, raw, where)
    for p in problems:
        path, _, message = p.partition(": ")
        problem(path, message)
    if problems:
        return False
    try:
        build_options(cls, raw)
    except (TypeError, ValueError) as exc:  # the dataclass's own checks (ranges, choices); never a value
        problem(where, str(exc))
        return False
    return True


def check_masking(raw: Mapping[Any, Any], schema: PluginSchema, problem: Problem) -> None:
    """``masking: {store.collection: {field: masker | {mask: masker, option: …, waiver: reason}}}``."""
    for source, fields in raw.items():
        where = key_path("masking", source)
        if not isinstance(fields, Mapping):
            continue  # reported by config._parse_masking
        for name, rule in fields.items():
            path = key_path(where, name)
            if isinstance(rule, str):
                spec: dict[Any, Any] = {"mask": rule}
            elif isinstance(rule, Mapping) and isinstance(rule.get("mask"), str):
                spec = dict(rule)
            else:
                continue  # reported by config._parse_masking
            masker = spec.pop("mask")
            waiver = spec.pop("waiver", None)
            if waiver is not None and not (isinstance(waiver, str) and waiver.strip()):
                problem(f"{path}.waiver", "expected a reason (text)")
            if schema.maskers is None:
                continue
            if masker not in schema.maskers:
                at = f"{path}.mask" if isinstance(rule, Mapping) else path
                problem(at, unknown("masker", masker, schema.maskers))
                continue
            _options(schema.maskers[masker], spec, path, problem)


NOTICE_ENGINES = ("postgres", "mysql")  # where notices read subjects' addresses (piiguard.response.notices)


def check_respond(raw: Mapping[Any, Any], schema: PluginSchema, stores: set[str] | None, problem: Problem,
                  store_engines: Mapping[str, str] | None = None) -> None:
    """``respond:`` responders (kind + options), notices (options) and contact (name, email); a
    responder's or the notices' store must be an engine it speaks."""
    unknown_keys(raw, RESPOND_KEYS, "respond", problem)
    responders = raw.get("responders")
    if responders is not None and not isinstance(responders, list):
        problem("respond.responders", "expected a list of {kind: …, store: …, …}")
        responders = []
    for i, item in enumerate(responders or []):
        where = f"respond.responders[{i}]"
        if not isinstance(item, Mapping):
            problem(where, "expected a mapping with kind and its options")
            continue
        spec = dict(item)
        kind = spec.pop("kind", None)
        if not isinstance(kind, str) or not kind:
            problem(f"{where}.kind", "required: the responder's kind (see `piiguard list responders`)")
            for key in spec:  # a misspelt "kind" is the likeliest reason
                if did_you_mean(key, ["kind"]):
                    problem(key_path(where, key), f"unknown key{did_you_mean(key, ['kind'])}")
            continue
        if schema.responders is not None:
            if kind not in schema.responders:
                problem(f"{where}.kind", unknown("responder", kind, schema.responders))
                continue
            if _options(schema.responders[kind], spec, where, problem):
                _store_ref(spec.get("store"), f"{where}.store", stores, problem)
                speaks = (schema.responder_engines or {}).get(kind)
                _store_engine(spec.get("store"), f"{where}.store", speaks, store_engines, f"responder {kind!r}",
                              problem)
    notices = raw.get("notices")
    if notices is not None:
        if not isinstance(notices, Mapping):
            problem("respond.notices", "expected a mapping (store, table, subject_column, email_column, …)")
        elif schema.notices is not None and _options(schema.notices(), notices, "respond.notices", problem):
            _store_ref(notices.get("store"), "respond.notices.store", stores, problem)
            _store_engine(notices.get("store"), "respond.notices.store", NOTICE_ENGINES, store_engines, "notices",
                          problem)
    _check_scope(raw.get("scope"), stores, problem)
    contact = raw.get("contact")
    if contact is not None:
        if not isinstance(contact, Mapping):
            problem("respond.contact", "expected a mapping with name and email")
        else:
            unknown_keys(contact, CONTACT_KEYS, "respond.contact", problem)
            for key in CONTACT_KEYS:
                if key in contact and not isinstance(contact[key], str):
                    problem(f"respond.contact.{key}", "expected a string")


def _check_scope(raw: Any, stores: set[str] | None, problem: Problem) -> None:
    """``respond.scope: {store.collection: field | skip}``: the field that identifies people in a collection
    (as the scan names it), or ``skip`` for a collection that names no person."""
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        problem("respond.scope", "expected a mapping {store.collection: field | skip}")
        return
    for where, value in raw.items():
        path = key_path("respond.scope", str(where))
        store, dot, collection = str(where).partition(".")
        if not isinstance(where, str) or not dot or not store or not collection:
            problem(path, "expected store.collection as the key")
            continue
        _store_ref(store, path, stores, problem)
        if not isinstance(value, str) or not value:
            problem(path, "expected the field that identifies people (as the scan names it), or skip")


def _store_engine(name: Any, path: str, speaks: tuple[str, ...] | None, store_engines: Mapping[str, str] | None,
                  who: str, problem: Problem) -> None:
    engine = (store_engines or {}).get(name) if isinstance(name, str) else None
    if speaks and engine is not None and engine not in speaks:
        problem(path, f"{who} works on {', '.join(speaks)} stores; {name!r} is {engine}")


def _store_ref(name: Any, path: str, stores: set[str] | None, problem: Problem) -> None:
    if stores is not None and isinstance(name, str) and name not in stores:
        problem(path, f"no store named {name!r} in stores{did_you_mean(name, stores)}")
