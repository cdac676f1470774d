"""One probe per engine: does the peer at an endpoint answer as this engine does?

Each probe is the engine's outside probe from ``checks/*.py`` (the same target classes and methods
``check`` runs from the outside vantage), pointed at a found endpoint with no credentials, plus the
few identify-only protocols piiguard names but does not check (memcached, CouchDB, Cassandra). A
probe returns a :class:`Service` when the answer is the engine's protocol, ``None`` when it is not,
and raises only the checks' own :class:`~piiguard.errors.StoreError` family (a silent, closing or
garbage-speaking peer); :mod:`.identify` decides what those mean and which probe runs next.

Every text taken from the peer (a version, a product, a banner word) passes through
:func:`~piiguard.discovery.base.clean`; every read is bounded in size here and in time by the
targets' own deadline (``Target.talk`` / ``Target.http``).
"""

from __future__ import annotations

import json
import re
import socket
import struct
from collections.abc import Callable, Mapping
from typing import Any

from piiguard.checks.base import ProtocolError, Target
from piiguard.checks.clickhouse import ClickHouseTarget
from piiguard.checks.mongodb import MongoTarget
from piiguard.checks.mysql import MySQLTarget
from piiguard.checks.opensearch import OpenSearchTarget
from piiguard.checks.postgres import PostgresTarget
from piiguard.checks.redis import RedisTarget
from piiguard.discovery.base import Endpoint, Kind, Service, clean
from piiguard.errors import StoreError
from piiguard.model import Store

BANNER_BYTES = 4096  # what a server that speaks first is read for
HTTP_BYTES = 65536  # of an HTTP answer's body
S3_CODES = ("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AllAccessDisabled",
            "MissingSecurityHeader", "InvalidRequest", "AuthorizationHeaderMalformed", "NoSuchBucket")
# Server headers of S3 implementations, lower-cased, and the product each names.
S3_SERVERS = (("minio", "MinIO"), ("versitygw", "versitygw"), ("seaweedfs", "SeaweedFS"), ("ceph", "Ceph"),
              ("amazons3", "Amazon S3"), ("garage", "Garage"))
_VERSION = re.compile(r"\d+(?:\.\d+){0,3}")

Probe = Callable[[Endpoint, float], "Service | None"]


def _store(endpoint: Endpoint, engine: str, **options: str) -> Store:
    return Store(endpoint.address, engine, host=endpoint.host, port=endpoint.port, options=options)


def _version(text: str | None) -> str | None:
    match = _VERSION.search(text or "")
    return clean(match.group(0), 20) if match else None


def banner(endpoint: Endpoint, timeout: float) -> bytes:
    """What the peer sends before it is sent anything (at most :data:`BANNER_BYTES`); ``b""`` when it
    waits for the client, as most engines do. Bounded by the target's deadline."""
    target = Target(_store(endpoint, "unknown"), timeout=timeout)

    def exchange(sock: socket.socket) -> bytes:
        try:
            return sock.recv(BANNER_BYTES)
        except TimeoutError:
            return b""

    return target.talk(exchange)


def mysql(endpoint: Endpoint, timeout: float) -> Service | None:
    """MariaDB/MySQL greet first: protocol 10, a NUL-ended version, capability flags
    (``MySQLTarget.greeting``, as ``mysql.no-tls`` reads it). MariaDB says so in the version."""
    version, _caps = MySQLTarget(_store(endpoint, "mysql"), timeout=timeout).greeting
    if not version[:1].isdigit():
        return None
    mariadb = "mariadb" in version.lower()
    number = re.search(r"(\d+\.\d+\.\d+)-MariaDB", version) if mariadb else None
    return Service(endpoint, Kind.STORE, "mysql", "MariaDB" if mariadb else "MySQL",
                   clean(number.group(1), 20) if number else _version(version),
                   "greeted as MariaDB/MySQL do (protocol 10 handshake)")


def looks_like_mysql(data: bytes) -> bool:
    """A MySQL handshake packet's frame: a 3-byte length that fits, sequence 0, protocol 10."""
    return len(data) >= 5 and data[3] == 0 and data[4] == 10 and 0 < int.from_bytes(data[:3], "little") < 65536


# ER_HOST_IS_BLOCKED, ER_HOST_NOT_PRIVILEGED, ER_CON_COUNT_ERROR: sent instead of a greeting
MYSQL_REFUSALS = (1129, 1130, 1040)


def mysql_refusal(endpoint: Endpoint, data: bytes) -> Service | None:
    """A MariaDB/MySQL server that refuses this host sends an error packet (0xff, its error number)
    instead of the greeting: still MariaDB/MySQL, with no version."""
    if len(data) < 9 or data[3] != 0 or data[4] != 0xFF or int.from_bytes(data[:3], "little") != len(data) - 4:
        return None
    code = int.from_bytes(data[5:7], "little")
    if code not in MYSQL_REFUSALS:
        return None
    product = "MariaDB" if b"MariaDB" in data else "MySQL"
    return Service(endpoint, Kind.STORE, "mysql", product, None,
                   f"refused this host with MariaDB/MySQL error {code} instead of a greeting")


def not_a_store(endpoint: Endpoint, data: bytes) -> Service:
    """A server that spoke first and is no engine piiguard knows: named by its banner's first word."""
    upper = data[:200].upper()
    if data.startswith(b"SSH-"):
        what = "SSH server"
    elif data.startswith(b"220") and b"FTP" in upper:
        what = "FTP server"
    elif data.startswith(b"220"):
        what = "SMTP server" if b"SMTP" in upper or b"MAIL" in upper else "server with a 220 banner"
    elif data.startswith((b"* OK", b"+OK")):
        what = "mail server (IMAP/POP3)"
    else:
        what = "banner"
    word = clean(data.split(None, 1)[0] if data.split(None, 1) else data, 20)
    return Service(endpoint, Kind.NOT_A_STORE, None, word, None, f"{what}: sent a banner before any request")


def postgres(endpoint: Endpoint, timeout: float) -> Service | None:
    """PostgreSQL answers SSLRequest with S/N, then a startup message with an authentication request
    or an error (``PostgresTarget.startup``, as ``postgres.trust-auth`` sends it). No password is sent."""
    answer = PostgresTarget(_store(endpoint, "postgres"), timeout=timeout).startup("postgres")
    said = {"ok": "no password asked", "password": "a password asked for", "rejected": "the startup refused"}[answer]
    return Service(endpoint, Kind.STORE, "postgres", "PostgreSQL", None,
                   f"answered SSLRequest and a startup message as PostgreSQL does ({said})")


def redis(endpoint: Endpoint, timeout: float) -> Service | None:
    """Redis answers PING with +PONG, or refuses it as Redis does (NOAUTH, protected mode's DENIED);
    the version only when INFO is answered without authentication (``RedisTarget.reply``)."""
    target = RedisTarget(_store(endpoint, "redis"), timeout=timeout)
    line = target.probe("PING")
    if line.startswith(("-NOAUTH", "-DENIED")):
        why = "authentication required" if line.startswith("-NOAUTH") else "protected mode refused the client"
        return Service(endpoint, Kind.STORE, "redis", "Redis", None, f"refused PING as Redis does ({why})")
    if line != "+PONG":
        return None
    info = target.reply("INFO", "server", limit=8192).decode("ascii", "replace")
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    product = "Valkey" if "valkey_version" in fields else "Redis"
    version = fields.get("valkey_version") or fields.get("redis_version")
    return Service(endpoint, Kind.STORE, "redis", product, _version(version),
                   "answered PING and INFO without authentication")


def mongodb(endpoint: Endpoint, timeout: float) -> Service | None:
    """MongoDB answers an OP_MSG ``hello`` before authentication by design (``MongoTarget``'s plain
    probe); ``buildInfo`` gives the version, and FerretDB says itself there (``ferretdbVersion``)."""
    target = MongoTarget(_store(endpoint, "mongodb"), timeout=timeout)
    tls = False
    try:
        hello = target.command_plain({"hello": 1, "$db": "admin"})
    except ProtocolError:
        if not _completes_tls(endpoint, timeout):  # a TLS-only listener drops plain text
            raise
        tls = True
        hello = target.command_plain({"hello": 1, "$db": "admin"}, tls=True)
    if not (hello.get("ok") == 1 and "maxWireVersion" in hello) and not (
            hello.get("ok") == 0 and isinstance(hello.get("code"), int)):
        return None
    build = target.command_plain({"buildInfo": 1, "$db": "admin"}, tls=tls)
    ferret = "ferretdbVersion" in build or "ferretdb" in json.dumps(list(build), default=str).lower()
    version = build.get("ferretdbVersion") if ferret else build.get("version")
    return Service(endpoint, Kind.STORE, "mongodb", "FerretDB" if ferret else "MongoDB",
                   _version(str(version)) if version else None,
                   f"answered an OP_MSG hello as MongoDB does{' over TLS' if tls else ''}")


def clickhouse_native(endpoint: Endpoint, timeout: float) -> Service | None:
    """ClickHouse's native port answers the client's Hello with its own, or refuses user default
    with one of its authentication errors (``ClickHouseTarget.native_hello``)."""
    target = ClickHouseTarget(_store(endpoint, "clickhouse", tcp_port=str(endpoint.port)), timeout=timeout)
    hello = target.native_hello()
    if hello is None:
        return Service(endpoint, Kind.STORE, "clickhouse", "ClickHouse", None,
                       "native protocol: refused user default without a password with a ClickHouse error")
    name, version = hello
    return Service(endpoint, Kind.STORE, "clickhouse", clean(name, 20) or "ClickHouse", _version(version),
                   "native protocol: answered the client Hello")


def http(endpoint: Endpoint, timeout: float) -> Service | None:
    """One anonymous ``GET /`` (``Target.http_answer``, the request ``opensearch.anonymous-access``
    and the S3 checks send) and what answers it: OpenSearch/Elasticsearch, CouchDB, an S3 service,
    ClickHouse's HTTP interface, or an HTTP server that is none of them."""
    status, headers, body, scheme = _get_root(endpoint, timeout)
    doc = _json(body)
    for decide in (_search, _couchdb, _s3):
        found = decide(endpoint, status, headers, body, doc, scheme)
        if found is not None:
            return found
    if status == 200 and body == b"Ok.\n":
        return _clickhouse_http(endpoint, timeout, scheme)
    if status == 400 and b"is for clickhouse-client program" in body:
        # ClickHouse's native port answers HTTP so (since 18.x): the native probe decides
        return clickhouse_native(endpoint, timeout)
    server = clean(headers.get("server"), 30)
    return Service(endpoint, Kind.NOT_A_STORE, None, server, None,
                   f"HTTP server ({scheme} {status}{', Server: ' + server if server else ''}), not a data store")


def _get_root(endpoint: Endpoint, timeout: float) -> tuple[int, dict[str, str], bytes, str]:
    """``GET /`` in plain HTTP first, then in TLS when plain text was refused as a TLS port refuses
    it. (``Target.http`` opens with a TLS handshake instead; on a port that may be anything, a
    ClientHello leaves Redis and others waiting a whole timeout, while a plain request is refused at
    once.) Seeding ``speaks_tls`` chooses the scheme; the request is the targets' own."""
    refused: ProtocolError | None = None
    for tls in (False, True):
        if tls and not _completes_tls(endpoint, timeout):
            raise refused or ProtocolError(endpoint.address, "the server did not answer as HTTP does")
        target = OpenSearchTarget(_store(endpoint, "opensearch"), timeout=timeout)
        target.__dict__["speaks_tls"] = tls
        try:
            status, headers, body = target.http_answer("GET", "/", limit=HTTP_BYTES)
        except ProtocolError as exc:
            if tls:
                raise
            refused = exc
            continue
        if tls or not (status == 400 and re.search(rb"(?i)https|ssl|tls", body[:1024])):
            return status, headers, body, "HTTPS" if tls else "HTTP"
        refused = ProtocolError(endpoint.address, "plain HTTP was refused as a TLS port refuses it")
    raise ProtocolError(endpoint.address, "the server did not answer as HTTP does")  # not reached


def _completes_tls(endpoint: Endpoint, timeout: float) -> bool:
    """A TLS handshake (``Target.speaks_tls``) with a quarter of the timeout: a TLS server answers
    a ClientHello at once, while Redis and other line protocols would wait out a whole timeout."""
    try:
        return bool(Target(_store(endpoint, "unknown"), timeout=max(timeout / 4, 0.1)).speaks_tls)
    except StoreError:
        return False


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _search(endpoint: Endpoint, status: int, headers: Mapping[str, str], body: bytes, doc: Any,
            scheme: str) -> Service | None:
    """``GET /`` of OpenSearch/Elasticsearch: 200 with ``version.number`` (``distribution`` says
    opensearch; Elasticsearch has none, and its tagline). With security on: 401 with a Basic realm
    naming it — OpenSearch's security plugin says ``OpenSearch Security``, X-Pack says ``security``
    — or a JSON ``security_exception``."""
    version = doc.get("version") if isinstance(doc, dict) else None
    if status == 200 and isinstance(version, dict) and isinstance(version.get("number"), str):
        opensearch = version.get("distribution") == "opensearch" or "opensearch" in str(doc.get("tagline")).lower()
        return Service(endpoint, Kind.STORE, "opensearch", "OpenSearch" if opensearch else "Elasticsearch",
                       _version(version["number"]), f"{scheme} GET / answered without credentials, as "
                       f"{'OpenSearch' if opensearch else 'Elasticsearch'} does (version JSON)")
    realm = headers.get("www-authenticate", "").lower()
    if status == 401 and "basic" in realm and ("opensearch security" in realm or 'realm="security"' in realm):
        opensearch = "opensearch" in realm
        return Service(endpoint, Kind.STORE, "opensearch", "OpenSearch" if opensearch else "Elasticsearch", None,
                       f"{scheme} GET / refused with the Basic realm of "
                       f"{'the OpenSearch security plugin' if opensearch else 'Elasticsearch security'}")
    error = doc.get("error") if isinstance(doc, dict) else None
    if status in (401, 403) and isinstance(error, dict) and error.get("type") == "security_exception":
        return Service(endpoint, Kind.STORE, "opensearch", "Elasticsearch", None,
                       f"{scheme} GET / refused with a security_exception, as Elasticsearch does")
    return None


def _couchdb(endpoint: Endpoint, status: int, headers: Mapping[str, str], body: bytes, doc: Any,
             scheme: str) -> Service | None:
    """CouchDB's root: ``{"couchdb": "Welcome", "version": …}`` (docs.couchdb.org, API: /)."""
    if isinstance(doc, dict) and doc.get("couchdb") == "Welcome":
        return Service(endpoint, Kind.IDENTIFY_ONLY, "couchdb", "CouchDB", _version(str(doc.get("version", ""))),
                       f"{scheme} GET / answered with CouchDB's welcome")
    return None


def _s3(endpoint: Endpoint, status: int, headers: Mapping[str, str], body: bytes, doc: Any,
        scheme: str) -> Service | None:
    """An S3 answer to an unsigned ``GET /``: a ListAllMyBucketsResult, or an ``<Error>`` whose
    ``<Code>`` is one of S3's; the implementation from its ``Server`` header."""
    head = body[:HTTP_BYTES].lstrip()
    codes = re.search(rb"<Error>\s*<Code>([A-Za-z]{1,40})</Code>", head)
    listing = b"<ListAllMyBucketsResult" in head
    if not listing and not (codes and codes.group(1).decode() in S3_CODES):
        return None
    server = headers.get("server", "").lower()
    product = next((name for key, name in S3_SERVERS if key in server), None)
    if product is None and any(h.startswith("x-minio") for h in headers):
        product = "MinIO"
    said = "listed buckets" if listing else f"answered {codes.group(1).decode() if codes else ''}"
    return Service(endpoint, Kind.STORE, "s3", product or "S3", None,
                   f"{scheme} unsigned GET / {said} in S3's XML")


def _clickhouse_http(endpoint: Endpoint, timeout: float, scheme: str) -> Service | None:
    """ClickHouse's HTTP interface answers ``/`` and ``/ping`` with ``Ok.``; the version only when
    user default runs ``SELECT version()`` without a password (``ClickHouseTarget.http_query``)."""
    options = {"tcp_port": str(endpoint.port), "secure": "true" if scheme == "HTTPS" else "false"}
    target = ClickHouseTarget(_store(endpoint, "clickhouse", **options), timeout=timeout)
    status, ping = target.http("GET", "/ping", limit=64)
    if status != 200 or ping != b"Ok.\n":
        return None
    version: str | None = None
    try:
        code, line = target.http_query("SELECT version()")
        version = _version(line) if code == 200 else None
    except ProtocolError:
        pass  # refused in a way that is not ClickHouse's: /ping decided; the version stays unknown
    return Service(endpoint, Kind.STORE, "clickhouse", "ClickHouse", version,
                   f"{scheme} /ping answered Ok. as ClickHouse's HTTP interface does")


def memcached(endpoint: Endpoint, timeout: float) -> Service | None:
    """memcached's text protocol: ``version`` → ``VERSION x.y.z`` (protocol.txt)."""
    target = Target(_store(endpoint, "memcached"), timeout=timeout)

    def exchange(sock: socket.socket) -> bytes:
        sock.sendall(b"version\r\n")
        reply = b""
        while b"\r\n" not in reply and len(reply) < 256:
            chunk = sock.recv(256)
            if not chunk:
                raise ProtocolError(endpoint.address, "the server closed the connection without a reply")
            reply += chunk
        return reply

    line = target.talk(exchange).split(b"\r\n", 1)[0]
    said = line[8:].decode("ascii", "replace")
    if not line.startswith(b"VERSION ") or not _VERSION.match(said):
        return None
    return Service(endpoint, Kind.IDENTIFY_ONLY, "memcached", "memcached", _version(said),
                   "answered the text-protocol version command")


CQL_OPTIONS = b"\x04\x00\x00\x00\x05\x00\x00\x00\x00"  # v4 frame, stream 0, opcode OPTIONS, no body
_SUPPORTED, _ERROR = 0x06, 0x00


def cassandra(endpoint: Endpoint, timeout: float) -> Service | None:
    """Cassandra's native protocol: OPTIONS → SUPPORTED, a string multimap with ``CQL_VERSION``
    (native_protocol_v4.spec §4.1.3, §4.2.4); a server that speaks only other versions answers a
    protocol ERROR (code 0x000A) in a response frame."""
    target = Target(_store(endpoint, "cassandra"), timeout=timeout)

    def exchange(sock: socket.socket) -> tuple[bytes, bytes]:
        sock.sendall(CQL_OPTIONS)
        header = target.read_exact(sock, 9)
        length = struct.unpack("!I", header[5:9])[0]
        if not header[0] & 0x80 or length > 65536:
            raise ProtocolError(endpoint.address, "the server did not answer as Cassandra does")
        return header, target.read_exact(sock, length)

    header, body = target.talk(exchange)
    if header[4] == _ERROR and body[:4] == b"\x00\x00\x00\x0a":
        return Service(endpoint, Kind.IDENTIFY_ONLY, "cassandra", "Cassandra", None,
                       "native protocol: refused protocol v4 with a protocol error frame")
    if header[4] != _SUPPORTED:
        return None
    options = _multimap(body)
    if options is None or "CQL_VERSION" not in options:
        return None
    cql = options["CQL_VERSION"][0] if options["CQL_VERSION"] else None
    return Service(endpoint, Kind.IDENTIFY_ONLY, "cassandra", "Cassandra", None,
                   f"native protocol: OPTIONS answered SUPPORTED (CQL {clean(cql, 12) or '?'})")


def _multimap(body: bytes) -> dict[str, list[str]] | None:
    """A CQL [string multimap]; None when the bytes are not one."""
    out: dict[str, list[str]] = {}
    pos = 0

    def string() -> str:
        nonlocal pos
        (n,) = struct.unpack_from("!H", body, pos)
        text = body[pos + 2:pos + 2 + n]
        if len(text) != n:
            raise ValueError("short string")
        pos += 2 + n
        return text.decode("utf-8")

    try:
        (count,) = struct.unpack_from("!H", body, 0)
        pos = 2
        for _ in range(count):
            key = string()
            (items,) = struct.unpack_from("!H", body, pos)
            pos += 2
            out[key] = [string() for _ in range(items)]
    except (struct.error, ValueError):
        return None
    return out if pos == len(body) else None
