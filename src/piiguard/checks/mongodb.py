"""MongoDB wire-protocol checks (MongoDB, and FerretDB which the tests run).

Outside checks use no credentials: a raw ``hello`` (OP_MSG) on a plain socket tells whether the port
speaks without TLS, and ``listDatabases`` from an anonymous client tells whether it serves data
(``hello`` and ``isMaster`` are answered before authentication by design and prove nothing). Inside
checks log in as the store's user and read ``buildInfo`` and ``getCmdLineOpts`` (``clusterMonitor``
role). FerretDB keeps no authorization setting of its own — its backend (PostgreSQL) authenticates —
and does not report its options, so on FerretDB ``mongodb.authorization-off`` is decided by the
anonymous probe and ``mongodb.bind-all`` is not applicable (it says so; network.exposed tests
reachability instead).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import random
import socket
import struct
from typing import TYPE_CHECKING, Any

from piiguard.checks.base import (
    Check,
    Outcome,
    ProtocolError,
    Target,
    checks,
    failed,
    not_applicable,
    passed,
    targets,
    unverified,
)
from piiguard.checks.cached import cached_property
from piiguard.connectors.mongodb import errors
from piiguard.engines import mongodb
from piiguard.engines.mongodb import client
from piiguard.model import Severity, Vantage
from piiguard.registry import driver

if TYPE_CHECKING:
    import bson
    import pymongo
    from pymongo import errors as me
else:  # imported on first use: starting the CLI must not load every engine's driver
    bson = driver("bson")
    pymongo = driver("pymongo")
    me = driver("pymongo.errors")

OP_MSG = 2013
RANSOM_PATTERNS = ("read_me*", "readme*", "*recover*", "warning", "please_read*", "*_meow", "hacked*", "*bitcoin*")


class MongoTarget(Target):
    default_port = 27017

    @cached_property
    def plain_hello(self) -> bool:
        """Whether a ``hello`` sent in plain text is answered as MongoDB answers."""
        try:
            return self.command_plain({"hello": 1, "$db": "admin"}).get("ok") == 1
        except ProtocolError:
            return False  # a TLS listener drops plain text

    def command_plain(self, command: dict[str, Any], *, tls: bool = False) -> dict[str, Any]:
        """One command as OP_MSG on a fresh connection (plain text, or TLS accepting any certificate),
        no credentials; the reply document (discovery reads ``hello`` and ``buildInfo`` with it).
        Anything that is not a MongoDB reply is a :class:`ProtocolError`."""
        doc = bson.encode(command)
        body = struct.pack("<I", 0) + b"\x00" + doc
        message = struct.pack("<iiii", 16 + len(body), random.randrange(1 << 30), 0, OP_MSG) + body

        def exchange(raw: socket.socket) -> dict[str, Any]:
            sock = unverified().wrap_socket(raw, server_hostname=self.host) if tls else raw
            sock.sendall(message)
            length, _req, _to, opcode = struct.unpack("<iiii", self.read_exact(sock, 16))
            if opcode != OP_MSG or not 21 <= length <= 48_000_000:
                raise ProtocolError(self.store.name, "the server did not answer as MongoDB does")
            reply = self.read_exact(sock, length - 16)
            try:
                return dict(bson.decode(reply[5:]))
            except (bson.errors.BSONError, ValueError, IndexError) as exc:
                raise ProtocolError(self.store.name, "the server did not answer as MongoDB does") from exc

        return self.talk(exchange)

    def anonymous(self) -> pymongo.MongoClient[dict[str, Any]]:
        return mongodb.anonymous(self.host, self.port, self.timeout, tls_insecure=not self.plain_hello)

    @cached_property
    def anonymous_databases(self) -> int | None:
        """Databases listed by a client with no credentials; None when refused."""
        with self.anonymous() as c:
            try:
                return len(c.admin.command("listDatabases", nameOnly=True).get("databases", []))
            except me.OperationFailure:
                # MongoDB answers Unauthorized (13); FerretDB relays its backend's refusal (code 1)
                return None
            except me.PyMongoError as exc:
                raise ProtocolError(self.store.name, f"no MongoDB answer ({type(exc).__name__})") from exc

    @cached_property
    def session(self) -> pymongo.MongoClient[dict[str, Any]]:
        c = client(self.store, self.timeout)
        with errors(self.store):
            c.admin.command("ping")
        return c

    def command(self, name: str, **kw: Any) -> dict[str, Any]:
        with errors(self.store):
            return dict(self.session.admin.command(name, **kw))

    @cached_property
    def ferretdb(self) -> bool:
        return "ferretdbVersion" in self.command("buildInfo")


class MongoCheck(Check[MongoTarget]):
    engine = "mongodb"


@checks.register("mongodb.no-auth")
class NoAuth(MongoCheck):
    """Databases are listed without authentication.

    Risk: anyone who reaches the port reads, copies and drops every collection — the ransom-note
    waves of 2017 and since hit exactly these servers.
    Seen from outside: ``listDatabases`` answered for a client with no credentials (``hello`` does
    not count: it is answered before login by design).
    Fix: ``security.authorization: enabled`` with users; on FerretDB, a backend that requires
    credentials (no password in ``--postgresql-url``).
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    anchors = ("nmap: mongodb-databases", "nuclei: mongodb-unauth")

    def run(self, target: MongoTarget) -> Outcome:
        listed = target.anonymous_databases
        if listed is not None:
            return failed(f"listDatabases answered without credentials ({listed} databases)")
        return passed("listDatabases refused without credentials")


@checks.register("mongodb.no-tls")
class NoTLS(MongoCheck):
    """The server accepts connections without TLS.

    Risk: credentials (PLAIN, or SCRAM's exchange) and documents cross the network in clear.
    Fix: ``net.tls.mode: requireTLS``; on FerretDB, ``--listen-tls`` without ``--listen-addr``.
    """

    severity, vantage = Severity.HIGH, Vantage.OUTSIDE

    def run(self, target: MongoTarget) -> Outcome:
        if target.plain_hello:
            return failed("a plain-text hello was answered")
        return passed("plain text is refused (TLS only)")


@checks.register("mongodb.authorization-off")
class AuthorizationOff(MongoCheck):
    """Authorization is not enabled.

    Risk: without ``security.authorization`` every connection may do everything, whatever users
    exist.
    Fix: ``security.authorization: enabled`` (then restart); on FerretDB, make the backend demand
    credentials.
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE

    def run(self, target: MongoTarget) -> Outcome:
        if target.ferretdb:
            if target.anonymous_databases is not None:
                return failed("FerretDB serves clients without credentials (its backend URL carries them)")
            return passed("FerretDB refuses clients without credentials (its backend authenticates)")
        setting = target.command("getCmdLineOpts").get("parsed", {}).get("security", {}).get("authorization")
        if setting != "enabled":
            return failed(f"security.authorization is {setting or 'not set'}")
        return passed("security.authorization is enabled")


@checks.register("mongodb.bind-all")
class BindAll(MongoCheck):
    """The server listens on every interface or a non-loopback address.

    Risk: every network the host is on can reach the port, including ones added later.
    Fix: ``net.bindIp`` with loopback and the application's address only; never ``bindIpAll``.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: MongoTarget) -> Outcome:
        if target.ferretdb:
            return not_applicable("FerretDB does not report its listen addresses; network.exposed "
                                  "(probe_from) tests who can reach it")
        public = public_binds(target.command("getCmdLineOpts").get("parsed", {}).get("net", {}))
        if public:
            return failed(f"listening on {', '.join(public)}")
        return passed("bound to loopback only")


@checks.register("mongodb.ransom-collections")
class RansomCollections(MongoCheck):
    """A database or collection is named like a ransom note.

    Risk: ``READ_ME_TO_RECOVER_YOUR_DATA`` and the like are left by attackers who already copied and
    dropped the data: an incident, not a misconfiguration.
    Fix: treat it as a breach; restore from backup; close the port.
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE

    def run(self, target: MongoTarget) -> Outcome:
        with errors(target.store):
            names = []
            for database in target.session.list_database_names():
                names.append(database)
                names += [f"{database}.{c}" for c in target.session[database].list_collection_names()]
        hits = [n for n in names if any(fnmatch.fnmatch(n.rsplit(".", 1)[-1].lower(), p) for p in RANSOM_PATTERNS)]
        if hits:
            return failed(f"{len(hits)} name(s) like ransom notes: {', '.join(hits[:5])}")
        return passed(f"{len(names)} database and collection names look ordinary")


def public_binds(net: dict[str, Any]) -> list[str]:
    """Non-loopback listen addresses from ``getCmdLineOpts`` ``parsed.net`` (MongoDB's defaults: localhost)."""
    if net.get("bindIpAll"):
        return ["all interfaces (bindIpAll)"]
    out = []
    for address in str(net.get("bindIp") or "localhost").split(","):
        address = address.strip()
        try:
            if not ipaddress.ip_address(address).is_loopback:
                out.append(address)
        except ValueError:
            if address not in ("localhost", "") and not address.startswith("/"):  # a socket path is local
                out.append(address)
    return out


targets.add("mongodb", MongoTarget)
