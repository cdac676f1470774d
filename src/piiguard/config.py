"""``piiguard.yaml`` and store URLs → the validated model.

Every problem is collected with its path (``stores[1].port: expected an integer``) and reported at
once as a :class:`ConfigError`, so a person fixes the file in one pass. Credentials are references
only: ``password_env`` (an environment variable) or ``password_file``; a password written into a
URL is refused.

Example::

    stores:
      - name: prod
        engine: postgres
        host: db.internal
        port: 5432
        database: app
        user: piiguard_ro
        password_env: PROD_PG_PASSWORD
        tags: {env: prod, owner: platform}
      - name: exports
        url: file:///srv/exports          # a folder: every CSV / JSONL / Parquet file in it
    detectors:                            # your own PII types, no code needed
      - name: loyalty-number
        pattern: 'LOY-[0-9]{8}'
        context: [loyalty, member]
        description: Loyalty programme card number.
"""

from __future__ import annotations

import functools
import gc
import ipaddress
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from piiguard.classify.settings import ClassifySettings, parse_classify
from piiguard.discovery.settings import DiscoverySettings, parse_discovery
from piiguard.engines.tls import BOOL_KEYS as TLS_BOOL_KEYS
from piiguard.engines.tls import CA_KEYS as TLS_CA_KEYS
from piiguard.engines.tls import CHOICES as TLS_CHOICES
from piiguard.engines.tls import OPTION_KEYS as TLS_OPTION_KEYS
from piiguard.engines.tls import REQUIRE_LEVELS, ca_problem
from piiguard.errors import ConfigError
from piiguard.model import Store
from piiguard.policy import Policy, parse_policy
from piiguard.schema import (
    PluginSchema,
    build_options,
    check_masking,
    check_respond,
    did_you_mean,
    key_path,
    option_problems,
)

# Engines and the libpq/MySQL-style environment variable a URL store reads its password from.
URL_SCHEMES = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "file": "files",
    "redis": "redis",
    "rediss": "redis",  # Redis over TLS: sets the tls option
    "clickhouse": "clickhouse",
    "opensearch": "opensearch",
    "elasticsearch": "opensearch",
    "mongodb": "mongodb",
    "s3": "s3",
}
DEFAULT_PASSWORD_ENV = {"postgres": "PGPASSWORD", "mysql": "MYSQL_PWD", "redis": "REDISCLI_AUTH",
                        "clickhouse": "CLICKHOUSE_PASSWORD", "opensearch": "OPENSEARCH_PASSWORD",
                        "mongodb": "MONGODB_PASSWORD", "s3": "AWS_SECRET_ACCESS_KEY"}
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "redis": 6379, "clickhouse": 8123, "opensearch": 9200,
                 "mongodb": 27017, "s3": 443}
PATH_ENGINES = {"sqlite", "files"}
# Engine-specific store options (``options:`` in YAML, or URL parameters). For s3 the store's user is
# the access key id (an identifier, not a secret) and the password the secret access key.
OPTION_KEYS = {
    # the server log, read for incident evidence, and how it is written (else asked of the server)
    "postgres": {"log_file", "log_format", "log_line_prefix", "log_timezone"},
    "mysql": {"log_file"},  # the server_audit plugin's log, read for incident evidence
    "clickhouse": {"tcp_port", "config_dir"},
    "opensearch": {"tls", "cafile"},
    "mongodb": {"tls", "cafile", "auth_mechanism"},
    "s3": {"tls", "cafile", "region", "delimiter"},
    "files": {"delimiter"},  # a CSV file's delimiter, else sniffed from its first lines: , ; tab |
}
# the delimiters a CSV may be forced to (piiguard.connectors.files): the character, or its name
DELIMITER_CHOICES = (",", ";", "|", "\t", "\\t", "tab", "comma", "semicolon", "pipe")
for _engine, _keys in TLS_OPTION_KEYS.items():  # each engine's TLS settings (piiguard.engines.tls)
    OPTION_KEYS.setdefault(_engine, set()).update(_keys)
BOOL_OPTIONS = {"tls"} | TLS_BOOL_KEYS
TLS_STORE_KEYS = set().union(*TLS_OPTION_KEYS.values())  # accepted as store keys too (folded into options)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$")

STORE_KEYS = {
    "name", "engine", "url", "host", "port", "database", "user", "path",
    "password_env", "password_file", "tags", "options", "allowed_networks", "probe_from", "require_tls",
}
DETECTOR_KEYS = {"name", "pattern", "context", "description", "min_share"}
TOP_KEYS = {"stores", "detectors", "catalog", "policy", "alerts", "masking", "respond", "discovery", "classify"}
# Alert sinks for watch, one mapping each; a secret (a Slack webhook URL, an SMTP password) only by
# reference: webhook_env, password_env.
ALERT_KEYS = {
    "webhook": {"webhook", "webhook_env", "slack"},
    "smtp": {"smtp", "port", "to", "from", "starttls", "smtps", "user", "password_env", "cafile"},
    "syslog": {"syslog"},
    "stdout": {"stdout"},
}


@dataclass(frozen=True)
class CustomDetector:
    """A PII type declared in YAML: a pattern that must match whole values, plus field-name words."""

    name: str
    pattern: str
    context: tuple[str, ...] = ()
    description: str = ""
    min_share: float = 0.8


@dataclass(frozen=True)
class Config:
    stores: tuple[Store, ...] = ()
    detectors: tuple[CustomDetector, ...] = ()
    catalog: str | None = None
    source: str | None = None
    policy: Policy = field(default_factory=Policy)
    alerts: tuple[Mapping[str, Any], ...] = ()
    # copy rules: {"store.collection": {field: masker name | {mask: name, option: value, waiver: reason}}};
    # maskers and their options are checked when a copy is planned (piiguard.masking.pipeline.mask_rules)
    masking: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # incident response: responders (kill switch), notices, contact; checked when an incident uses them
    # (piiguard.response.responders.build, piiguard.response.notices)
    respond: Mapping[str, Any] = field(default_factory=dict)
    # discovery: the networks piiguard may sweep, how, and the fingerprint/canary key by reference
    # (piiguard.discovery.settings)
    discovery: DiscoverySettings = field(default_factory=DiscoverySettings)
    # classify: per-field overrides of the classifier (piiguard.classify.settings)
    classify: ClassifySettings = field(default_factory=ClassifySettings)

    def store(self, name: str) -> Store | None:
        return next((s for s in self.stores if s.name == name), None)


@dataclass
class _Problems:
    items: list[str] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


def _unknown_keys(data: Mapping[str, Any], allowed: set[str], path: str, problems: _Problems) -> None:
    for key in data:
        if key not in allowed:
            problems.add(key_path(path, key), f"unknown key{did_you_mean(key, allowed)}")


def _str_list(data: Mapping[str, Any], key: str, path: str, problems: _Problems) -> list[str]:
    value = data.get(key) or []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    problems.add(f"{path}.{key}", "expected a list of strings")
    return []


def _opt_str(data: Mapping[str, Any], key: str, path: str, problems: _Problems) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    problems.add(f"{path}.{key}", f"expected a string, got {type(value).__name__}")
    return None


def store_from_url(url: str, *, name: str | None = None, where: str = "url") -> Store:
    """Parse ``postgresql://user@host:port/db``, ``mysql://…``, ``sqlite:///x.db``, ``file:///path``."""
    problems = _Problems()
    store = _parse_url(url, name, where, problems)
    if problems.items or store is None:
        raise ConfigError(problems.items, hint="see `piiguard scan --help` for the URL forms")
    return store


def _parse_url(url: str, name: str | None, where: str, problems: _Problems) -> Store | None:
    parts = urlsplit(url)
    engine = URL_SCHEMES.get(parts.scheme.lower())
    if engine is None:
        known = ", ".join(f"{s}://" for s in URL_SCHEMES)
        problems.add(where, f"unsupported URL scheme {parts.scheme!r}{did_you_mean(parts.scheme.lower(), URL_SCHEMES)};"
                            f" use one of {known}")
        return None
    if parts.password is not None:
        env = DEFAULT_PASSWORD_ENV.get(engine, "PASSWORD_ENV")
        problems.add(
            where,
            "a password inside a URL is refused: it would end up in shell history, logs and "
            f"process lists; put it in an environment variable (e.g. {env}) or add "
            "?password_env=VAR / ?password_file=PATH",
        )
        return None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    options = {k: v for k, v in query.items() if k not in {"password_env", "password_file"}}
    if parts.scheme.lower() == "rediss":
        options.setdefault("tls", "true")
    for key in options:
        if key not in OPTION_KEYS.get(engine, set()):
            allowed = OPTION_KEYS.get(engine, set()) | {"password_env", "password_file"}
            problems.add(where, f"unknown URL parameter {key!r}{did_you_mean(key, allowed)}")
    _check_option_values(options, where, problems)
    if engine in PATH_ENGINES:
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost"):
            problems.add(where, f"{parts.scheme}:// URLs take a local path: {parts.scheme}:///abs/path")
        if not path:
            problems.add(where, "missing path")
            return None
        return Store(name=name or Path(path).name or path, engine=engine, path=path)
    try:
        port = parts.port or DEFAULT_PORTS[engine]
    except ValueError:
        problems.add(where, "port is not a number")
        return None
    host = parts.hostname or "localhost"
    database = unquote(parts.path.lstrip("/")) or None
    password_env = query.get("password_env")
    if password_env is None and "password_file" not in query:
        password_env = DEFAULT_PASSWORD_ENV[engine]
    return Store(
        name=name or f"{host}:{port}/{database or ''}",
        engine=engine,
        host=host,
        port=port,
        database=database,
        user=unquote(parts.username) if parts.username else None,
        password_env=password_env,
        password_file=query.get("password_file"),
        options=options,
    )


def _check_option_values(options: Mapping[str, str], where: str, problems: _Problems) -> None:
    for key in BOOL_OPTIONS & set(options):
        if options[key].lower() not in ("true", "false"):
            problems.add(f"{where}.{key}" if where.endswith("options") else where, f"{key}: expected true or false")
    for key, choices in {**TLS_CHOICES, "delimiter": DELIMITER_CHOICES}.items():
        if key in options and options[key] not in choices:
            problems.add(f"{where}.{key}" if where.endswith("options") else where,
                         f"{key}: expected one of {', '.join(choices)}")


Opts = TypeVar("Opts")


def options_from(cls: type[Opts], raw: Mapping[str, Any], where: str) -> Opts:
    """A plugin's typed options (a dataclass) from YAML: unknown keys (with a did-you-mean), missing
    required ones and values of the wrong type are errors with their path (:mod:`piiguard.schema`)."""
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{where}: expected a mapping of options"])
    problems = option_problems(cls, raw, where)
    if problems:
        raise ConfigError(problems)
    try:
        return build_options(cls, raw)  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise ConfigError([f"{where}: {exc}"]) from exc


def option_flag(store: Store, key: str, default: bool) -> bool:
    """A boolean store option (validated when the configuration was parsed)."""
    value = store.options.get(key)
    return default if value is None else value.lower() == "true"


def _parse_store(raw: Any, path: str, problems: _Problems, engines: set[str] | None) -> Store | None:
    if not isinstance(raw, Mapping):
        problems.add(path, "expected a mapping with name and engine (or url)")
        return None
    _unknown_keys(raw, STORE_KEYS | TLS_STORE_KEYS, path, problems)
    name = _opt_str(raw, "name", path, problems)
    if not name:
        problems.add(f"{path}.name", "required")
    elif not NAME_RE.match(name):
        problems.add(f"{path}.name", "use letters, digits and _ . : / @ - only")
    tags = raw.get("tags") or {}
    if not isinstance(tags, Mapping) or not all(isinstance(v, str | int | float) for v in tags.values()):
        problems.add(f"{path}.tags", "expected a mapping of tag names to strings")
        tags = {}
    tag_map = {str(k): str(v) for k, v in tags.items()}
    options = raw.get("options") or {}
    if isinstance(options, Mapping):  # TLS settings may also sit beside the other keys: sslmode: verify-full
        options = {**{k: v for k, v in raw.items() if k in TLS_STORE_KEYS}, **options}
    if not isinstance(options, Mapping) or not all(isinstance(v, str | int) for v in options.values()):
        problems.add(f"{path}.options", "expected a mapping of option names to strings (see the engine's docs)")
        options = {}
    option_map = {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items()}
    networks = _str_list(raw, "allowed_networks", path, problems)
    for i, net in enumerate(networks):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            problems.add(f"{path}.allowed_networks[{i}]", "not a network (e.g. 10.0.0.0/8)")
    probe_from = _str_list(raw, "probe_from", path, problems)
    require_tls = _opt_str(raw, "require_tls", path, problems) or ""
    if require_tls and require_tls not in REQUIRE_LEVELS:
        problems.add(f"{path}.require_tls", f"expected one of {', '.join(REQUIRE_LEVELS)}")
        require_tls = ""
    exposure: dict[str, Any] = {"allowed_networks": tuple(networks), "probe_from": tuple(probe_from),
                                "require_tls": require_tls}
    engine_name = raw.get("engine") or URL_SCHEMES.get(urlsplit(str(raw.get("url", ""))).scheme.lower(), "")
    for key in option_map:
        if key not in OPTION_KEYS.get(str(engine_name), set()):
            known = ", ".join(sorted(OPTION_KEYS.get(str(engine_name), set()))) or "none"
            close = did_you_mean(key, OPTION_KEYS.get(str(engine_name), set()))
            problems.add(key_path(f"{path}.options", key),
                         f"unknown option for engine {engine_name}{close} (known: {known})")
    _check_option_values(option_map, f"{path}.options", problems)
    url = _opt_str(raw, "url", path, problems)
    if url is not None:
        for key in ("engine", "host", "port", "database", "user", "path"):
            if key in raw:
                problems.add(f"{path}.{key}", "give either url or the separate fields, not both")
        store = _parse_url(url, name, f"{path}.url", problems)
        if store is None:
            return None
        pw_env = _opt_str(raw, "password_env", path, problems) or store.password_env
        pw_file = _opt_str(raw, "password_file", path, problems) or store.password_file
        return Store(**{**store.__dict__, "password_env": pw_env, "password_file": pw_file,
                        "tags": tag_map, "options": {**store.options, **option_map}, **exposure})
    engine = _opt_str(raw, "engine", path, problems)
    if not engine:
        problems.add(f"{path}.engine", "required (or give url)")
        return None
    if engines is not None and engine not in engines:
        problems.add(f"{path}.engine", f"unknown engine {engine!r}{did_you_mean(engine, engines)}; "
                     f"known: {', '.join(sorted(engines))}")
    port = raw.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        problems.add(f"{path}.port", "expected an integer between 1 and 65535")
        port = None
    store_path = _opt_str(raw, "path", path, problems)
    if engine in PATH_ENGINES and not store_path:
        problems.add(f"{path}.path", f"required for engine {engine}")
    if "password" in raw:
        problems.add(f"{path}.password", "inline passwords are refused; use password_env or password_file")
    pw_env = _opt_str(raw, "password_env", path, problems)
    pw_file = _opt_str(raw, "password_file", path, problems)
    if pw_env is not None and pw_file is not None:
        problems.add(path, "give password_env or password_file, not both")
    return Store(
        name=name or "",
        engine=engine,
        host=_opt_str(raw, "host", path, problems),
        port=port if port is not None else DEFAULT_PORTS.get(engine),
        database=_opt_str(raw, "database", path, problems),
        user=_opt_str(raw, "user", path, problems),
        path=store_path,
        password_env=pw_env,
        password_file=pw_file,
        tags=tag_map,
        options=option_map,
        **exposure,
    )


def _parse_masking(raw: Any, problems: _Problems) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, Mapping):
        problems.add("masking", "expected a mapping of store.collection to field rules")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for source, fields in raw.items():
        if not isinstance(fields, Mapping):
            problems.add(key_path("masking", source), "expected a mapping of field names to a masker (or {mask: …, …})")
            continue
        for name, rule in fields.items():
            if not isinstance(rule, str) and not (isinstance(rule, Mapping) and "mask" in rule):
                problems.add(key_path(key_path("masking", source), name),
                             "expected a masker name or a mapping with mask:")
        out[str(source)] = {str(k): v for k, v in fields.items()}
    return out


def _parse_detector(raw: Any, path: str, problems: _Problems) -> CustomDetector | None:
    if not isinstance(raw, Mapping):
        problems.add(path, "expected a mapping with name and pattern")
        return None
    _unknown_keys(raw, DETECTOR_KEYS, path, problems)
    name = _opt_str(raw, "name", path, problems)
    pattern = _opt_str(raw, "pattern", path, problems)
    if not name or not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name):
        problems.add(f"{path}.name", "required, in kebab-case (e.g. loyalty-number)")
    if not pattern:
        problems.add(f"{path}.pattern", "required")
    else:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.add(f"{path}.pattern", f"not a valid regular expression ({exc.msg})")
        else:
            from piiguard.classify.engine import pattern_problem  # imports Arrow and Hyperscan: only here

            if (why := pattern_problem(pattern)) is not None:
                problems.add(f"{path}.pattern", why)
    context = raw.get("context") or []
    if not isinstance(context, list) or not all(isinstance(c, str) for c in context):
        problems.add(f"{path}.context", "expected a list of words")
        context = []
    share = raw.get("min_share", 0.8)
    if not isinstance(share, int | float) or not 0 < share <= 1:
        problems.add(f"{path}.min_share", "expected a number in (0, 1]")
        share = 0.8
    if not name or not pattern:
        return None
    return CustomDetector(name, pattern, tuple(c.lower() for c in context),
                          _opt_str(raw, "description", path, problems) or "", float(share))


def _parse_alerts(raw: Any, problems: _Problems) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(raw, list):
        problems.add("alerts", "expected a list of sinks (webhook, smtp, syslog, stdout)")
        return ()
    out = []
    for i, item in enumerate(raw):
        path = f"alerts[{i}]"
        kinds = [k for k in ALERT_KEYS if isinstance(item, Mapping) and (k in item or f"{k}_env" in item)]
        if len(kinds) != 1:
            problems.add(path, "expected exactly one of webhook (or webhook_env), smtp, syslog, stdout")
            if isinstance(item, Mapping) and not kinds:  # a misspelt kind: say which key it was
                _unknown_keys(item, {k for keys in ALERT_KEYS.values() for k in keys} | {"webhook_env"}, path, problems)
            continue
        kind = kinds[0]
        _unknown_keys(item, ALERT_KEYS[kind], path, problems)
        _check_sink(kind, item, functools.partial(key_path, path), problems)
        out.append(MappingProxyType({"kind": kind, **item}))
    return tuple(out)


def check_alert_flags(items: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """``watch``'s sink flags, each ``(flag, {kind, …})``, validated by the same code as ``alerts:``
    in piiguard.yaml; a problem names the flag. Raises :class:`ConfigError` (exit 2)."""
    problems = _Problems()
    for flag, item in items:
        _check_sink(str(item["kind"]), item, functools.partial(_flag, flag), problems)
    if problems.items:
        raise ConfigError(problems.items, hint="see `piiguard watch --help`")


def _flag(flag: str, _key: str) -> str:
    return flag


def _port_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected a port number, got {type(value).__name__}"
    return None if 1 <= value <= 65535 else "expected a port number from 1 to 65535"


def _header_safe(value: Any) -> bool:
    """A value that goes into an e-mail header or a network address: a string without control characters."""
    return isinstance(value, str) and bool(value) and not any(ord(c) < 32 or ord(c) == 127 for c in value)


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    if not _header_safe(url):
        return "must not hold control characters"
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        return None  # the caller's message says which form is expected
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        return "the port is not a number from 0 to 65535"
    return None if parts.port != 0 else "the port must not be 0"


def _check_sink(kind: str, item: Mapping[str, Any], at: Callable[[str], str], problems: _Problems) -> None:
    """Every setting a sink is built from, so that a sink that passes here is built without an error."""
    if kind == "smtp":
        if not _header_safe(item.get("smtp")) or any(c in str(item.get("smtp")) for c in " /@"):
            problems.add(at("smtp"), "expected the SMTP server's host name or address")
        if "port" in item and (why := _port_problem(item["port"])):
            problems.add(at("port"), why)
        to = item.get("to")
        if not (isinstance(to, list) and to):
            problems.add(at("to"), "required: a list of recipients")
        elif not all(_header_safe(t) and "@" in t and "," not in t for t in to):
            problems.add(at("to"), "each recipient is one e-mail address (no commas or control characters)")
        if "from" in item and not (_header_safe(item["from"]) and "," not in item["from"]):
            problems.add(at("from"), "expected one e-mail address (no commas or control characters)")
        for key in ("starttls", "smtps"):
            if key in item and not isinstance(item[key], bool) and item[key] is not None:
                problems.add(at(key), "expected true or false")
        for key in ("user", "password_env", "cafile"):
            if item.get(key) is not None and not _header_safe(item[key]):
                problems.add(at(key), "expected a string without control characters")
        if item.get("user") and not (item.get("starttls") or item.get("smtps")):
            problems.add(at("user"), "a login needs TLS: set starttls: true (or smtps: true)")
    elif kind == "syslog":
        url = item.get("syslog")
        parts = urlsplit(str(url))
        if not isinstance(url, str) or parts.scheme not in ("udp", "tcp") or not parts.hostname:
            problems.add(at("syslog"), "expected udp://host:port or tcp://host:port")
        elif why := _url_problem(url, ("udp", "tcp")):
            problems.add(at("syslog"), why)
    elif kind == "webhook":
        if "webhook" in item:
            url = item["webhook"]
            if not isinstance(url, str) or not url.startswith(("http://", "https://")) or not urlsplit(url).hostname:
                problems.add(at("webhook"), "expected an http(s) URL (or webhook_env: VAR for a secret URL)")
            elif why := _url_problem(url, ("http", "https")):
                problems.add(at("webhook"), why)
        if "webhook_env" in item and not _header_safe(item["webhook_env"]):
            problems.add(at("webhook_env"), "expected the name of an environment variable")
        if item.get("slack") is not None and not isinstance(item["slack"], bool):
            problems.add(at("slack"), "expected true or false")


def _list(data: Mapping[str, Any], key: str, problems: _Problems) -> list[Any]:
    raw = data.get(key) or []
    if isinstance(raw, list):
        return raw
    problems.add(key, "expected a list")
    return []


def parse_config(data: Any, *, source: str | None = None, engines: set[str] | None = None,
                 check_ids: set[str] | None = None, schema: PluginSchema | None = None) -> Config:
    """Validate a loaded YAML document, every section at once. ``schema`` (from
    :func:`piiguard.plugins.schema`) checks what plugins define: engines, the check ids the policy
    names, maskers and their options, responders and their options, notices; ``engines`` and
    ``check_ids`` override its names. Without a schema those parts are checked for shape only."""
    schema = schema or PluginSchema()
    if engines is None and schema.engines is not None:
        engines = set(schema.engines)
    if check_ids is None and schema.check_ids is not None:
        check_ids = set(schema.check_ids)
    problems = _Problems()
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(["(top): expected a mapping with a 'stores' list"],
                          hint=f"fix {source or 'the configuration'} and run `piiguard validate`")
    _unknown_keys(data, TOP_KEYS, "", problems)
    stores: list[Store] = []
    names: set[str] = set()  # a set, not a scan of the list: 100,000 stores validate in linear time
    for i, raw in enumerate(_list(data, "stores", problems)):
        store = _parse_store(raw, f"stores[{i}]", problems, engines)
        if store is not None:
            if store.name in names:
                problems.add(f"stores[{i}].name", f"duplicate store name {store.name!r}")
            names.add(store.name)
            stores.append(store)
    detectors: list[CustomDetector] = []
    for i, raw in enumerate(_list(data, "detectors", problems)):
        det = _parse_detector(raw, f"detectors[{i}]", problems)
        if det is not None:
            if any(d.name == det.name for d in detectors):
                problems.add(f"detectors[{i}].name", f"duplicate detector name {det.name!r}")
            detectors.append(det)
    catalog = _opt_str(data, "catalog", "", problems)
    policy = parse_policy(data.get("policy"), problems.add, check_ids)
    alerts = _parse_alerts(data.get("alerts") or [], problems)
    masking = _parse_masking(data.get("masking") or {}, problems)
    check_masking(masking, schema, problems.add)
    respond = data.get("respond") or {}
    if not isinstance(respond, Mapping):
        problems.add("respond", "expected a mapping (responders, notices, contact)")
        respond = {}
    check_respond(respond, schema, names, problems.add, {s.name: s.engine for s in stores})
    discovery = parse_discovery(data.get("discovery"), problems.add)
    classify = parse_classify(data.get("classify"), problems.add, _pii_types(detectors))
    if problems.items:
        raise ConfigError(problems.items, hint=f"fix {source or 'the configuration'} and run `piiguard validate`")
    stores = [policy.stamp(s) for s in stores]  # policy's require_tls rules, matched by tag, onto each store
    return Config(tuple(stores), tuple(detectors), catalog, source, policy, alerts, masking, respond, discovery,
                  classify)


def _pii_types(custom: list[CustomDetector]) -> set[str]:
    """The PII types an override may force: the registered detectors (the built-in list imports no
    Arrow or Hyperscan, so ``validate`` stays quick) and the configuration's own."""
    import piiguard.classify.builtin  # noqa: F401  (registers the built-in detectors)
    from piiguard.classify.detectors import detectors

    return set(detectors.names()) | {d.name for d in custom}


MAX_DEPTH = 64  # a configuration is a few levels deep; 10,000 ``[`` would exhaust Python's stack
MAX_ALIAS_NODES = 10_000  # nodes YAML aliases may add beyond the file's own ("billion laughs" adds 10⁹)


class _Bounded(yaml.composer.Composer):
    """PyYAML's composer with a bound on nesting depth and on what aliases expand to."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise _Refused(f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        seen: set[str] = set()
        for key, _ in node.value:  # PyYAML keeps the last of two equal keys; a second `stores:` would hide the first
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    raise _Refused(f"line {key.start_mark.line + 1}: duplicate key {key.value!r}",
                                   hint="YAML keeps only the last one; merge them")
                seen.add(key.value)
        return node

    def compose_document(self) -> Any:
        # Composer.compose_document, keeping the anchors long enough to know whether aliases were used:
        # without an anchor there is no alias, and a 100,000-store file skips the expansion walk.
        self.get_event()  # type: ignore[attr-defined]  # DocumentStartEvent
        node = self.compose_node(None, None)
        self.get_event()  # type: ignore[attr-defined]  # DocumentEndEvent
        if self.anchors:
            _check_expansion(node)
        self.anchors = {}
        return node


class _SafeLoader(_Bounded, yaml.SafeLoader):
    """Pure Python: scanner, parser, bounded composer, safe constructor."""


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastLoader(_Bounded, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """libyaml's scanner and parser (C, ten times faster on a 100,000-store file), PyYAML's bounded
        composer (libyaml's own composer recurses in C and crashes on 100,000 nested ``[``), the safe
        constructor. _Bounded comes first, so its composer methods win over CParser's C ones."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self.anchors: dict[Any, Any] = {}

    _Loader: type = _FastLoader
else:  # pragma: no cover - PyYAML without libyaml
    _Loader = _SafeLoader


class _Refused(Exception):
    def __init__(self, message: str, hint: str = "simplify the file") -> None:
        super().__init__(message)
        self.hint = hint


def _check_expansion(root: Any) -> None:
    """Refuse a document whose aliases refer to their own container, or, expanded, add more than
    MAX_ALIAS_NODES nodes. One depth-first walk of the node graph (a DAG once cycles are refused):
    each shared node is sized once, so a billion-laughs document costs its own size, not 10⁹."""
    size: dict[int, int] = {}
    on_path = {id(root)}
    stack: list[tuple[Any, Iterator[Any]]] = [(root, iter(_children(root)))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            on_path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in _children(node))
        elif id(child) in on_path:
            raise _Refused("a YAML alias refers to the list or mapping that contains it; write the values out")
        elif id(child) not in size:
            on_path.add(id(child))
            stack.append((child, iter(_children(child))))
    if size[id(root)] - len(size) > MAX_ALIAS_NODES:
        raise _Refused(f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} extra nodes "
                       "(a \"billion laughs\" document?); write the values out instead")


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml(text: str, where: str) -> Any:
    """YAML → Python, safely: no tags that build objects, bounded depth, bounded alias expansion."""
    collecting = gc.isenabled()
    gc.disable()  # the loader allocates millions of acyclic nodes; the collector's passes over them halved speed
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except _Refused as exc:
        raise ConfigError([f"{where}: {exc}"], hint=exc.hint) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        at = f"{where}:{mark.line + 1}" if mark is not None else where
        # PyYAML's problem text names the token (never the document's content beyond it)
        raise ConfigError([f"{at}: not valid YAML" + (f" ({problem})" if problem else "")]) from exc
    except RecursionError:  # deep structures the depth bound did not see (e.g. in the scanner)
        raise ConfigError([f"{where}: nested too deeply"], hint="simplify the file") from None
    finally:
        if collecting:
            gc.enable()


def load_config(path: str | os.PathLike[str], *, engines: set[str] | None = None,
                check_ids: set[str] | None = None, schema: PluginSchema | None = None) -> Config:
    """Read and validate ``piiguard.yaml``: UTF-8, safe YAML, then :func:`parse_config` against the
    registered plugins (unless ``engines``, ``check_ids`` or ``schema`` say otherwise)."""
    if schema is None and engines is None and check_ids is None:
        from piiguard import plugins  # here: plugins imports this module

        schema = plugins.schema()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read ({exc.strerror})"]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError([f"{p}:{line}:{column}: not UTF-8"],
                          hint="save the file as UTF-8") from None
    data = load_yaml(text, str(p))
    return parse_config(data, source=str(p), engines=engines, check_ids=check_ids, schema=schema)


def missing_secrets(stores: Sequence[Store], alerts: Sequence[Mapping[str, Any]] = (),
                    respond: Mapping[str, Any] | None = None) -> list[str]:
    """``stores[i].password_env: PG_PASSWORD is not set`` for each secret reference whose variable is
    unset: the stores' ``password_env`` (and ``password_file`` that does not exist), and every
    ``*_env`` key in ``alerts:`` (``webhook_env``, SMTP ``password_env``) and ``respond:`` (a
    responder's ``client_secret_env``, the notices' SMTP password).

    A variable named in the configuration must be set where piiguard runs (the libpq-style default a
    URL implies, e.g. PGPASSWORD, may stay unset: a store may need no password)."""
    out = []
    for i, store in enumerate(stores):
        if _explicit_env(store) and store.password_env not in os.environ:
            out.append(f"stores[{i}].password_env: {store.password_env} is not set")
        if store.password_file and not Path(store.password_file).is_file():
            out.append(f"stores[{i}].password_file: {store.password_file} does not exist")
        for key in TLS_CA_KEYS:
            problem = ca_problem(store.options[key]) if store.options.get(key) else None
            if problem:
                out.append(f"stores[{i}].options.{key}: the CA file {store.options[key]} {problem}")
    out += _unset_env_refs(list(alerts), "alerts")
    out += _unset_env_refs(respond or {}, "respond")
    return out


def _unset_env_refs(node: Any, path: str, depth: int = 0) -> list[str]:
    """Every ``*_env: NAME`` below ``node`` whose variable is unset (the loader already bounds depth)."""
    out: list[str] = []
    if depth > 64:
        return out
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{path}.{key}"
            if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                if value and value not in os.environ:
                    out.append(f"{here}: {value} is not set")
            else:
                out += _unset_env_refs(value, here, depth + 1)
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            out += _unset_env_refs(item, f"{path}[{i}]", depth + 1)
    return out


def _explicit_env(store: Store) -> bool:
    return bool(store.password_env) and store.password_env != DEFAULT_PASSWORD_ENV.get(store.engine)


def resolve_password(store: Store) -> str | None:
    """Read the store's password from its reference. Missing references are configuration errors."""
    if store.password_file:
        try:
            return Path(store.password_file).read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise ConfigError(
                [f"stores.{store.name}.password_file: cannot read {store.password_file} ({exc.strerror})"]
            ) from exc
    if store.password_env:
        value = os.environ.get(store.password_env)
        if value is None and _explicit_env(store):
            raise ConfigError([f"stores.{store.name}.password_env: {store.password_env} is not set"],
                              hint=f"export {store.password_env} before running piiguard")
        return value
    return None
