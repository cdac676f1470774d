"""Discovered stores against the configured ones: registered or not, the finding, ``adopt``.

A sweep sees IP addresses; piiguard.yaml names hosts. A configured store is *at* a found service
when its host resolves to the service's IP and its port — the one configured, else the engine's
default (the config parser fills it in), or ClickHouse's native ``tcp_port`` option — is the
service's. This is not :func:`piiguard.masking.ownership.same_place`: that compares a copy's
recorded URL with a store as text (both written by piiguard), where here one side is an address
the network answered on, so the other side's name has to be resolved.

Resolution is cached and bounded: one ``getaddrinfo`` per host name every few minutes, each given
at most :data:`RESOLVE_SECONDS`; a name that does not resolve (or not in time) is simply not a match — the
store is then reported unregistered, which is the safe side (an operator looks at it).
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from piiguard.checks.base import checks
from piiguard.checks.discovery import CHECK_ID, UnregisteredStore
from piiguard.config import DEFAULT_PASSWORD_ENV, NAME_RE, PATH_ENGINES
from piiguard.discovery.base import CopyLink, Discovered, Endpoint, Kind, Service, clean
from piiguard.errors import UsageError
from piiguard.model import Finding, Severity, Status, Store, Vantage

if TYPE_CHECKING:
    from piiguard.catalog import Catalog

RESOLVE_SECONDS = 2.0
CACHE_SECONDS, FAILURE_SECONDS, CACHE_SIZE = 300.0, 30.0, 4096
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_cache: dict[str, tuple[float, frozenset[_IP]]] = {}


def _ip(text: str) -> _IP | None:
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.5 is 10.0.0.5
    return address


def same_ip(a: str, b: str) -> bool:
    """Whether two IP texts are one address (``fd00::5`` and ``fd00:0::5``; ``::ffff:10.0.0.7`` and ``10.0.0.7``)."""
    x = _ip(a)
    return x is not None and x == _ip(b)


def _lookup(host: str) -> frozenset[_IP]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset()
    return frozenset(ip for info in infos if (ip := _ip(str(info[4][0]))) is not None)


def resolve(host: str, *, clock: Callable[[], float] = time.monotonic) -> frozenset[_IP]:
    """The addresses ``host`` names (an IP literal is itself); empty when it does not resolve in time.

    Cached for :data:`CACHE_SECONDS` (a failure for less: ``watch`` sweeps for days, and one slow
    DNS answer must not make a registered store look unregistered until it restarts)."""
    literal = _ip(host)
    if literal is not None:
        return frozenset({literal})
    now = clock()
    hit = _cache.get(host)
    if hit is not None and hit[0] > now:
        return hit[1]
    # A daemon thread, not a pool: a resolver that hangs past the bound must not hold up the exit.
    done: list[frozenset[_IP]] = []
    worker = threading.Thread(target=lambda: done.append(_lookup(host)), name="piiguard-resolve", daemon=True)
    worker.start()
    worker.join(RESOLVE_SECONDS)
    ips = done[0] if done else frozenset()
    if len(_cache) >= CACHE_SIZE:
        _cache.clear()
    _cache[host] = (now + (CACHE_SECONDS if ips else FAILURE_SECONDS), ips)
    return ips


def _ports(store: Store) -> set[int]:
    """The ports a configured store answers on: its port, and ClickHouse's native ``tcp_port`` (9000
    when it is not set: the port ``ClickHouseTarget`` checks then)."""
    ports = {store.port} if store.port else set()
    tcp_port = store.options.get("tcp_port", "9000" if store.engine == "clickhouse" else "")
    if tcp_port.isdigit():
        ports.add(int(tcp_port))
    return ports


def registered_at(service: Service, stores: Sequence[Store]) -> str | None:
    """The configured store at the service's address (host resolved, default port filled in), or None.

    Of several stores there (two databases of one server), one of the service's engine is preferred,
    then the first in the configuration's order."""
    where = _ip(service.endpoint.host)
    if where is None:
        return None
    here = [s for s in stores if s.engine not in PATH_ENGINES and service.endpoint.port in _ports(s)
            and where in resolve(s.host or "localhost")]
    best = [s for s in here if s.engine == service.engine] or here
    return best[0].name if best else None


def _describe(service: Service) -> str:
    """``redis (Redis 7.0.15)``: what it said is hostile text, cleaned again here (cheap, and the
    finding goes to alerts and reports whoever built the service)."""
    said = " ".join(t for t in (clean(service.product), clean(service.version)) if t)
    return f"{clean(service.engine) or 'an unknown engine'}{f' ({said})' if said else ''}"


def copy_context(links: Iterable[CopyLink]) -> str:
    """``copy of prod.public.customers: ~2,400 people, 80% (fingerprint, in members)`` per link: what a
    found store holds, in the words every report uses (names and counts, never a value)."""
    return "; ".join(f"copy of {link.source_store}.{link.source_collection}: ~{link.people:,} people, "
                     f"{link.share:.0%} ({link.via}, in {link.collection})" for link in links)


def linked_holdings(catalog: Catalog, links: Iterable[CopyLink]) -> tuple[tuple[str, ...], int | None]:
    """What copy links say a store holds: the PII types of the source fields they matched (from the
    source's last scan) and the most people one link counts (None: no link, or none counted)."""
    types: set[str] = set()
    people = 0
    fields: dict[str, dict[tuple[str, str], str]] = {}
    for link in links:
        if link.source_store not in fields:
            fields[link.source_store] = {(c, f): t for c, f, t, _ in catalog.pii_fields(link.source_store)}
        by_field = fields[link.source_store]
        types |= {by_field[(link.source_collection, f)] for f in link.source_fields
                  if (link.source_collection, f) in by_field}
        people = max(people, link.people)
    return tuple(sorted(types)), people or None


def unregistered_finding(found: Discovered, pii_types: Iterable[str] = ()) -> Finding | None:
    """``discovery.unregistered-store``: critical when it is open from outside; None when registered.

    The evidence names the address, the engine and the outside checks that got in — their ids, never
    what they read. Its data context names the copies found in it (:func:`copy_context`), its people
    the most one copy holds, its PII types those the caller knows the copied fields hold."""
    if found.registered is not None:
        return None
    from piiguard import plugins

    plugins.load()  # which checks expose is the registry's to say (cached: once per process)
    service = found.service
    address = service.endpoint.address
    doors = sorted({f.check for f in found.findings if f.status is Status.FAIL and f.check in checks
                    and checks.get(f.check).exposes})
    if found.open:
        severity = Severity.CRITICAL
        how = f"open from outside: {', '.join(doors)} failed" if doors else "open from outside"
    elif service.kind is Kind.IDENTIFY_ONLY:
        severity = Severity.MEDIUM
        how = "an engine piiguard identifies but does not check: whether it asks for credentials is unknown"
    else:
        severity = Severity.MEDIUM
        how = "it asks for credentials (no outside check got in)"
    people = max((link.people for link in found.links), default=0) or None
    return Finding(CHECK_ID, found.name, Status.FAIL, severity, Vantage.OUTSIDE, UnregisteredStore.title(),
                   f"{_describe(service)} at {address} is in no piiguard.yaml store; {how}",
                   tuple(sorted(set(pii_types))), people, copy_context(found.links))


def env_name(name: str) -> str:
    """``<NAME>_PASSWORD`` for a store name: upper case, every other character ``_``, never a leading digit."""
    base = re.sub(r"[^A-Z0-9]", "_", name.upper())
    return f"{'STORE_' if base[:1].isdigit() else ''}{base}_PASSWORD"


def _quoted(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it): ``"yes"``, ``"1e3"`` and
    ``"a: b"`` stay strings."""
    return json.dumps(value, ensure_ascii=True)


def adopt_entry(row: Mapping[str, object], name: str) -> str:
    """The piiguard.yaml entry (YAML text) for a discovered store, credentials as references to fill in.

    ``row`` is one of :meth:`Catalog.discovered`. The text is one item of the ``stores:`` list at
    two spaces' indent; the user and the password variable are placeholders for the read-only account
    the operator creates (never a credential piiguard guessed)."""
    address = Endpoint(str(row["host"]), int(str(row["port"]))).address
    if not NAME_RE.match(name) or len(name) > 200:
        raise UsageError(f"{name[:60]!r} cannot name a store",
                         hint="use letters, digits and _ . : / @ - only, starting with a letter or digit")
    engine = row.get("engine")
    if row.get("kind") != Kind.STORE.value or not isinstance(engine, str) or engine not in DEFAULT_PASSWORD_ENV:
        raise UsageError(f"{address} is {engine or 'an unidentified service'}, which piiguard does not scan",
                         hint="only stores of an engine piiguard scans can be adopted (piiguard list connectors)")
    lines = [f"  - name: {_quoted(name)}", f"    engine: {engine}", f"    host: {_quoted(str(row['host']))}",
             f"    port: {int(str(row['port']))}"]
    if engine != "redis":  # Redis's default user needs only a password
        lines.append(f"    user: {_quoted('piiguard')}  # a read-only account to create")
    lines.append(f"    password_env: {env_name(name)}")
    listed = row.get("also")
    also = [int(str(p)) for p in listed] if isinstance(listed, list | tuple) else []
    if engine == "clickhouse" and also:  # the same server's native port, found with its HTTP port
        lines += ["    options:", f"      tcp_port: {_quoted(str(also[0]))}"]
    first_seen = row.get("first_seen")
    lines += ["    tags:", f"      discovered: {_quoted(str(first_seen or ''))}"]
    return "\n".join(lines) + "\n"


def with_entry(text: str, entry: str, where: str) -> str:
    """``text`` (a piiguard.yaml) with ``entry`` (from :func:`adopt_entry`) added to its ``stores:``
    list — as text, so every comment and every other line stays as it was written (see :func:`_insert`).

    Proven before it is returned: the new text loads as the old document with exactly that one store
    appended, and nothing else changed; else it is refused and the file is left to edit by hand."""
    from piiguard.config import load_yaml

    new = _insert(text, entry, where)
    old_data, added = load_yaml(text, where) or {}, load_yaml(entry, "the entry")[0]
    expected = {**old_data, "stores": [*(old_data.get("stores") or []), added]}
    if load_yaml(new, where) != expected:
        raise UsageError(f"{where}: the entry cannot be added as text without changing what else the file says",
                         hint="add the printed entry to its stores list by hand (piiguard adopt without --write)")
    return new


def _insert(text: str, entry: str, where: str) -> str:
    """The text insertion itself.

    A block list gets the item after its last one, at its own indent; a flow list (``[…]``, a JSON
    file) gets the entry as a flow mapping before its ``]``; a file without ``stores`` gets a
    ``stores:`` section at its end. The caller validates the result."""
    import yaml

    from piiguard.config import load_yaml

    load_yaml(text, where)  # a file that is not valid YAML (or too deep, too many aliases) is refused first
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:  # e.g. two documents in one file: the configuration is one
        raise UsageError(f"{where} is not one YAML document", hint="fix it (piiguard validate)") from exc
    node = None
    if isinstance(root, yaml.MappingNode):
        node = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "stores"), None)
    elif root is not None:
        raise UsageError(f"{where} is not a mapping with a 'stores' list", hint="fix it (piiguard validate)")
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
        if node is not None or (isinstance(root, yaml.MappingNode) and root.flow_style):
            raise UsageError(f"{where}: its 'stores' key has no list to add to",
                             hint="write `stores: []` (or a first store) in it, then run adopt again")
        return f"{text}{'' if not text or text.endswith(chr(10)) else chr(10)}stores:\n{entry}"
    if not isinstance(node, yaml.SequenceNode):
        raise UsageError(f"{where}: 'stores' is not a list", hint="fix it (piiguard validate)")
    end = node.end_mark.index
    if node.flow_style:
        item = json.dumps(yaml.safe_load(entry)[0], ensure_ascii=True)
        close = text.rindex("]", 0, end)
        sep = ", " if node.value else ""
        return f"{text[:close].rstrip()}{sep}{item}{text[close:]}"
    indent = " " * node.start_mark.column
    body = "".join(indent + line[2:] + "\n" if line.startswith("  ") else line + "\n"
                   for line in entry.splitlines())
    # after the last item's own lines: comments and blank lines between it and the next key (a
    # "# end of the stores" or the next section's heading) stay after the new entry
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text[:end])  # each with its newline: they join back exactly
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("#")):
        lines.pop()
    head = "".join(lines)
    rest = text[len(head):]
    return head + ("" if not head or head.endswith("\n") else "\n") + body + rest
