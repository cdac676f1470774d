"""ClickHouse protocol checks.

The store's port is the HTTP interface (8123); the native port comes from ``options.tcp_port``
(default 9000). Outside checks send ``SELECT 1`` as user ``default`` with no password over HTTP and
the native protocol — a read of a constant, nothing else. Inside checks read ``system.settings``
with the store's credentials and, where ClickHouse keeps users and listeners in XML files (18.x and
any server configured by files), the files under ``options.config_dir`` (``config.xml``,
``users.xml``, ``config.d/``, ``users.d/``) — on the machine piiguard runs on.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import ssl
import struct
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from piiguard.checks.base import Check, Outcome, ProtocolError, Target, checks, failed, passed, targets
from piiguard.checks.cached import cached_property
from piiguard.config import resolve_password
from piiguard.engines import clickhouse, tls
from piiguard.engines.clickhouse import post  # noqa: F401 — re-exported: writers and evidence used it from here
from piiguard.engines.deadline import deadline
from piiguard.errors import AuthenticationFailed, CollectionError, StoreUnreachable
from piiguard.model import Severity, Vantage
from piiguard.registry import driver

if TYPE_CHECKING:
    from clickhouse_driver import errors as ch_errors
else:  # imported on first use: starting the CLI must not load every engine's driver
    ch_errors = driver("clickhouse_driver.errors")

# UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, IP_ADDRESS_NOT_ALLOWED, AUTHENTICATION_FAILED
AUTH_CODES = (192, 193, 194, 195, 516)
OPEN_NETWORKS = ("::/0", "0.0.0.0/0", "0.0.0.0", "::")



class ClickHouseTarget(Target):
    """A ClickHouse server: anonymous HTTP and native probes, an HTTP session, its XML configuration."""

    default_port = 8123

    @property
    def http_port(self) -> int:
        return self.port

    @property
    def speaks_tls(self) -> bool:
        """ClickHouse serves HTTPS on a port of its own (https_port): the store's port speaks TLS when
        its ``secure`` option says so."""
        return tls.flag(self.store, "secure", False)

    @property
    def tcp_port(self) -> int:
        return int(self.store.options.get("tcp_port", 9000))

    def http_query(self, query: str, user: str = "default", password: str = "",
                   context: ssl.SSLContext | None = None) -> tuple[int, str]:
        """(status, first line of the body) of a GET query; credentials in headers, never in the URL."""
        status, raw = self.http("GET", f"/?query={urllib.parse.quote(query)}",
                                {"X-ClickHouse-User": user, "X-ClickHouse-Key": password}, limit=4096,
                                context=context)
        body = raw.decode("utf-8", "replace").split("\n", 1)[0]
        if status >= 400 and not body.startswith("Code:"):  # ClickHouse's errors all start so
            raise ProtocolError(self.store.name, f"HTTP {status} from something that is not ClickHouse")
        return status, body

    def native_open(self) -> bool:
        """True when the native port runs SELECT 1 for user default with no password."""
        client = clickhouse.native(self.store, self.timeout, port=self.tcp_port)
        try:
            return bool(clickhouse.native_call(self.store, self.timeout, client, "SELECT 1") == [(1,)])
        except (ch_errors.ServerException, AuthenticationFailed):
            return False  # authentication refused (native_call says so as AuthenticationFailed)
        except StoreUnreachable:
            raise
        except (ch_errors.NetworkError, ch_errors.SocketTimeoutError, OSError, EOFError) as exc:
            raise StoreUnreachable(self.store.name, f"no native answer from {self.host}:{self.tcp_port} "
                                   f"({type(exc).__name__})") from exc
        except (ch_errors.Error, ValueError, IndexError, UnicodeError, MemoryError) as exc:  # garbage, parsed
            raise ProtocolError(self.store.name, f"port {self.tcp_port} did not answer as ClickHouse does") from exc
        finally:
            client.disconnect()

    def native_hello(self) -> tuple[str, str] | None:
        """(server name, version) from the native port's Hello, sent as user default with no password
        (what ``native_open`` sends first); None when the server refused that login with one of its
        authentication errors — an answer only ClickHouse gives, so still ClickHouse. Discovery tells
        the native port apart with it."""
        client = clickhouse.native(self.store, self.timeout, port=self.tcp_port)
        try:
            with deadline(self.store, self.timeout, "native ClickHouse hello"):
                client.connection.force_connect()
            info = client.connection.server_info
            return str(info.name), f"{info.version_major}.{info.version_minor}.{info.version_patch}"
        except ch_errors.ServerException as exc:
            if getattr(exc, "code", None) in AUTH_CODES:
                return None
            raise ProtocolError(self.store.name, f"port {self.tcp_port} did not answer as ClickHouse does") from exc
        except StoreUnreachable:
            raise
        except (ch_errors.NetworkError, ch_errors.SocketTimeoutError, OSError, EOFError) as exc:
            raise StoreUnreachable(self.store.name, f"no native answer from {self.host}:{self.tcp_port} "
                                   f"({type(exc).__name__})") from exc
        except (ch_errors.Error, ValueError, IndexError, UnicodeError, MemoryError, struct.error,
                AttributeError, TypeError) as exc:  # garbage, parsed
            raise ProtocolError(self.store.name, f"port {self.tcp_port} did not answer as ClickHouse does") from exc
        finally:
            client.disconnect()

    def query(self, sql: str) -> str:
        tls.enforce(self.store)  # the store's password goes with it: never with less TLS than required
        status, body = self.http_query(sql, self.store.user or "default", resolve_password(self.store) or "",
                                       context=tls.context(self.store) if self.speaks_tls else None)
        if status in (401, 403) or (status == 500 and "password" in body.lower()):
            raise AuthenticationFailed(self.store.name, "inside checks could not log in",
                                       hint="configure the store's user and password_env")
        if status != 200:
            raise CollectionError(self.store.name, f"query refused (HTTP {status})")
        return body

    @cached_property
    def config_dir(self) -> Path:
        path = self.store.options.get("config_dir")
        if not path:
            raise CollectionError(self.store.name, "this check reads the server's XML configuration",
                                  hint="set options.config_dir (e.g. /etc/clickhouse-server)")
        return Path(path)

    def xml(self, main: str, overrides: str) -> list[ET.Element]:
        """The main file and its override directory, parsed (root elements)."""
        files = [self.config_dir / main, *sorted((self.config_dir / overrides).glob("*.xml"))]
        out = []
        for f in files:
            if f.is_file():
                try:
                    out.append(ET.parse(f).getroot())
                except (ET.ParseError, OSError) as exc:
                    raise CollectionError(self.store.name, f"cannot parse {f.name}") from exc
        if not out:
            raise CollectionError(self.store.name, f"no {main} in {self.config_dir}",
                                  hint="check options.config_dir")
        return out

    @cached_property
    def users(self) -> dict[str, ET.Element]:
        """Users as the server sees them: ``users.d/`` files *merged* into ``users.xml`` the way
        ClickHouse merges configuration (an element with ``replace`` replaces, one with ``remove``
        goes, anything else merges into the element of the same name; see
        https://clickhouse.com/docs/en/operations/configuration-files)."""
        roots = self.xml("users.xml", "users.d")
        merged = copy.deepcopy(roots[0])
        for over in roots[1:]:
            merge(merged, over)
        return {user.tag: user for section in merged.findall("users") for user in section}

    @cached_property
    def server_config(self) -> list[ET.Element]:
        return self.xml("config.xml", "config.d")


def _flag(element: ET.Element, name: str) -> bool:
    return element.get(name, "").strip().lower() in (name, "1", "true")


def merge(base: ET.Element, over: ET.Element) -> None:
    """Merge ``over`` into ``base`` as ClickHouse merges a config.d/users.d file into the main one:
    each child of ``over`` merges into ``base``'s next child of the same name (its text replaced,
    its children merged in turn), or is appended; ``replace="replace"`` puts it in place of that
    child, ``remove="remove"`` deletes that child."""
    used: dict[str, int] = {}
    for child in over:
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions
        same = [c for c in base if c.tag == child.tag]
        index = used.get(child.tag, 0)
        used[child.tag] = index + 1
        target = same[index] if index < len(same) else None
        if _flag(child, "remove"):
            if target is not None:
                base.remove(target)
            continue
        if target is None or _flag(child, "replace"):
            fresh = copy.deepcopy(child)
            if target is None:
                base.append(fresh)
            else:
                base[list(base).index(target)] = fresh
            continue
        if len(child) == 0:
            target.text = child.text
        else:
            merge(target, child)


_PASSWORDS = ("password", "password_sha256_hex", "password_double_sha1_hex", "password_bcrypt_hash")
# authentication by something other than a password: present is enough (``<kerberos/>`` is valid)
_EXTERNAL = ("ldap", "kerberos", "ssl_certificates", "ssh_keys", "http_authentication", "jwt")


def _has_password(user: ET.Element) -> bool:
    if any((user.findtext(tag) or "").strip() for tag in _PASSWORDS):
        return True
    return any(user.find(tag) is not None for tag in _EXTERNAL)


_IPV4_ALL = ipaddress.IPv4Network("0.0.0.0/0")
_IPV6_ALL = ipaddress.IPv6Network("::/0")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_PROBES = ("attacker.example.net", "x", "203.0.113.9", "a.b.c.d.e")  # names nobody allowed on purpose


def _v4(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> ipaddress.IPv4Network | None:
    """An IPv4-mapped IPv6 network (``::ffff:0.0.0.0/96``) as the IPv4 network it is."""
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED):
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}")
    return net if isinstance(net, ipaddress.IPv4Network) else None




def _permissive(pattern: str) -> bool:
    """A host_regexp that matches names nobody listed on purpose (``.*``, ``.+``, ``^.*$``)."""
    try:
        compiled = re.compile(pattern)
    except re.error:
        return False
    return all(compiled.search(name) for name in _PROBES)


def _open_network(user: ET.Element) -> bool:
    """Whether the user may log in from every address: no ``<networks>``, networks whose union is
    all of IPv4 (IPv4-mapped IPv6 counted as IPv4) or all of IPv6, or a host pattern any name matches."""
    networks = user.find("networks")
    if networks is None:
        return True  # no networks element: any address may log in
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for ip in networks.findall("ip"):
        text = (ip.text or "").strip()
        if text in OPEN_NETWORKS:
            return True
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if (four := _v4(net)) is not None:
            v4.append(four)
        elif isinstance(net, ipaddress.IPv6Network):
            v6.append(net)
    if list(ipaddress.collapse_addresses(v4)) == [_IPV4_ALL] or list(ipaddress.collapse_addresses(v6)) == [_IPV6_ALL]:
        return True
    if any((h.text or "").strip() in ("", "*", "%", "0.0.0.0", "::") for h in networks.findall("host")):
        return True
    return any(_permissive((h.text or "").strip()) for h in networks.findall("host_regexp"))


class ClickHouseCheck(Check[ClickHouseTarget]):
    engine = "clickhouse"


@checks.register("clickhouse.default-no-password")
class DefaultNoPassword(ClickHouseCheck):
    """User default runs queries with an empty password (over HTTP or the native port).

    Either port answering is a failure; a port that cannot be reached (only the HTTP port named, the
    native one firewalled) is reported in the evidence and the other decides.

    Risk: ``default`` with no password is ClickHouse's out-of-the-box account; anyone who reaches a
    port reads every table.
    Fix: set ``password_sha256_hex`` for default (or remove it) and restrict its ``networks``.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    anchors = ("nuclei: clickhouse-unauth",)

    def run(self, target: ClickHouseTarget) -> Outcome:
        # Each port is decided on its own: one that is closed, filtered or speaks something else is
        # part of the evidence, not a reason to leave an open door on the other one undecided.
        seen: list[str] = []
        open_ports: list[str] = []
        unreachable: list[StoreUnreachable] = []
        http_port, native_port = f"HTTP {target.http_port}", f"native {target.tcp_port}"
        try:
            status, body = target.http_query("SELECT 1")
            (open_ports if status == 200 and body.strip() == "1" else seen).append(http_port)
        except StoreUnreachable as exc:
            unreachable.append(exc)
        try:
            (open_ports if target.native_open() else seen).append(native_port)
        except StoreUnreachable as exc:
            unreachable.append(exc)
        if len(unreachable) == 2:
            raise unreachable[0]
        gone = [p for p in (http_port, native_port) if p not in seen and p not in open_ports]
        away = f"; {' and '.join(gone)} could not be reached" if gone else ""
        if open_ports:
            return failed(f"SELECT 1 ran as default with no password on {' and '.join(open_ports)}{away}")
        return passed(f"default with an empty password was refused on {' and '.join(seen)}{away}")


@checks.register("clickhouse.users-without-password")
class UsersWithoutPassword(ClickHouseCheck):
    """Users defined with an empty password.

    Risk: each opens the server to anyone within its networks.
    Fix: give every user a ``password_sha256_hex`` (or LDAP/Kerberos).
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE

    def run(self, target: ClickHouseTarget) -> Outcome:
        empty = sorted(name for name, user in target.users.items() if not _has_password(user))
        if empty:
            return failed(f"no password: {', '.join(empty)}")
        return passed(f"{len(target.users)} users, all with passwords")


@checks.register("clickhouse.networks-open")
class NetworksOpen(ClickHouseCheck):
    """Users allowed from every address (networks ::/0, 0.0.0.0/0, or none listed).

    Risk: a user's password is the only guard, from anywhere the port is reachable.
    Fix: list the application networks under each user's ``<networks>``.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: ClickHouseTarget) -> Outcome:
        wide = sorted(name for name, user in target.users.items() if _open_network(user))
        if wide:
            return failed(f"open to every address: {', '.join(wide)}")
        return passed("every user is limited to listed networks")


@checks.register("clickhouse.listen-all-no-tls")
class ListenAllNoTls(ClickHouseCheck):
    """The server listens on every interface with no TLS port configured.

    Risk: plain HTTP and native traffic, passwords included, reachable and readable on every network.
    Fix: listen on the addresses applications use, and configure ``https_port``/``tcp_port_secure``.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: ClickHouseTarget) -> Outcome:
        hosts = [(e.text or "").strip() for root in target.server_config for e in root.findall("listen_host")]
        tls = [e.tag for root in target.server_config for e in root if e.tag in ("https_port", "tcp_port_secure")]
        wildcard = [h for h in hosts if h in ("::", "0.0.0.0")]
        if wildcard and not tls:
            return failed(f"listen_host {', '.join(wildcard)} with no https_port or tcp_port_secure")
        where = ", ".join(hosts) or "the default (localhost)"
        return passed(f"listens on {where}" + (f"; TLS: {', '.join(tls)}" if tls else ""))


@checks.register("clickhouse.query-log-off")
class QueryLogOff(ClickHouseCheck):
    """Queries are not logged (log_queries = 0 for the checking user's profile).

    Risk: after a leak, system.query_log cannot say who read what.
    Fix: ``<log_queries>1</log_queries>`` in the default profile.
    """

    severity, vantage = Severity.LOW, Vantage.INSIDE

    def run(self, target: ClickHouseTarget) -> Outcome:
        value = target.query("SELECT value FROM system.settings WHERE name = 'log_queries'").strip()
        return passed("log_queries = 1") if value == "1" else failed(f"log_queries = {value or '0'}")


targets.add("clickhouse", ClickHouseTarget)
