"""PostgreSQL protocol checks.

Outside checks speak the wire protocol with no credentials: a startup message, and a login with a
few documented default passwords. Inside checks read ``pg_settings``, ``pg_hba_file_rules``,
``pg_roles`` and ``pg_namespace`` with the store's credentials; reading the pg_hba rules needs a
superuser or ``GRANT SELECT ON pg_hba_file_rules`` plus ``GRANT EXECUTE ON FUNCTION
pg_hba_file_rules()`` to the checking role.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
import ssl
import struct
from typing import TYPE_CHECKING, Any

from piiguard.checks.base import Check, Outcome, ProtocolError, Target, checks, failed, passed, targets
from piiguard.checks.cached import cached_property
from piiguard.config import resolve_password
from piiguard.engines import postgres
from piiguard.errors import AuthenticationFailed, PermissionDenied, StoreUnreachable
from piiguard.model import Severity, Vantage
from piiguard.registry import driver

if TYPE_CHECKING:
    import psycopg
else:  # imported on first use: starting the CLI must not load every engine's driver
    psycopg = driver("psycopg")

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
DEFAULT_PASSWORDS = ("", "postgres", "password", "admin", "123456")  # a small, documented list
PROBE_USERS = ("postgres",)
AUTH_OK, AUTH_CLEARTEXT, AUTH_MD5, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL = 0, 3, 5, 10, 11, 12
# SQLSTATEs of a refused login: invalid_password, invalid_authorization_specification (no pg_hba entry,
# or a rejecting one), invalid_catalog_name (no such database: the name was refused, not the server)
REFUSED = frozenset({"28P01", "28000", "3D000"})


def _sqlstate(payload: bytes) -> str | None:
    """The ``C`` (code) field of an ErrorResponse: fields are a type byte and a C string each."""
    for field in payload.split(b"\0"):
        if field[:1] == b"C":
            return field[1:].decode("ascii", "replace")
    return None


class _Scram:
    """The client side of SCRAM-SHA-256 (RFC 5802/7677) as PostgreSQL speaks it: no channel binding,
    the user name taken from the startup message. Passwords are used as given (no SASLprep)."""

    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.auth_message = b""
        self.salted = b""

    def client_first(self) -> bytes:
        return f"n,,{self.first_bare}".encode()

    def client_final(self, server_first: bytes) -> bytes:
        fields = dict(f.split("=", 1) for f in server_first.decode().split(",") if "=" in f)
        if not fields.get("r", "").startswith(self.nonce):
            raise ValueError("SCRAM nonce mismatch")
        self.salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.digest(self.salted, b"Client Key", "sha256")
        without_proof = f"c=biws,r={fields['r']}"
        self.auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.digest(hashlib.sha256(client_key).digest(), self.auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> bool:
        expected = hmac.digest(hmac.digest(self.salted, b"Server Key", "sha256"), self.auth_message, "sha256")
        return hmac.compare_digest(server_final.decode().removeprefix("v="), base64.b64encode(expected).decode())


class PostgresTarget(Target):
    """A PostgreSQL server: raw startup probes, test logins, and a read-only inside session."""

    default_port = 5432

    def users(self) -> list[str]:
        return list(dict.fromkeys([*PROBE_USERS, *([self.store.user] if self.store.user else [])]))

    def startup(self, user: str) -> str:
        """Send a startup message as ``user`` and read the answer: ``ok`` (AuthenticationOk: no
        password asked), ``password`` (a password is asked for) or ``rejected`` (an error, e.g. no
        pg_hba entry). Nothing is run; the session is closed at once."""
        params = f"user\0{user}\0database\0{self.store.database or 'postgres'}\0application_name\0piiguard-probe\0\0"
        body = struct.pack("!I", PROTOCOL_3) + params.encode()

        def exchange(raw: socket.socket) -> str:
            sock = self._tls_if_offered(raw)
            sock.sendall(struct.pack("!I", len(body) + 4) + body)
            kind = self.read_exact(sock, 1)
            length = struct.unpack("!I", self.read_exact(sock, 4))[0]
            if not 4 <= length <= 65536 or kind not in b"RE":
                raise ProtocolError(self.store.name, "the server did not answer as PostgreSQL does")
            payload = self.read_exact(sock, length - 4)
            if kind == b"E":
                if payload[:1] not in (b"S", b"V", b"C", b"M") or not payload.endswith(b"\0"):
                    raise ProtocolError(self.store.name, "the server did not answer as PostgreSQL does")
                return "rejected"
            # an authentication request names one of the protocol's methods (ok, cleartext, md5, GSS, SSPI, SASL)
            if len(payload) < 4 or struct.unpack("!I", payload[:4])[0] not in (AUTH_OK, 2, 3, 5, 7, 9, 10):
                raise ProtocolError(self.store.name, "the server did not answer as PostgreSQL does")
            if struct.unpack("!I", payload[:4])[0] == AUTH_OK:
                sock.sendall(b"X\0\0\0\4")  # Terminate
                return "ok"
            return "password"

        return self.talk(exchange)

    def _tls_if_offered(self, sock: socket.socket) -> socket.socket:
        """Ask for TLS as clients do (SSLRequest); an attacker sees what a TLS client sees. The server's
        certificate is not verified: the probe sends no secret."""
        sock.sendall(struct.pack("!II", 8, SSL_REQUEST))
        answer = self.read_exact(sock, 1)
        if answer == b"N":
            return sock
        if answer != b"S":
            raise ProtocolError(self.store.name, "the server did not answer as PostgreSQL does")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context.wrap_socket(sock, server_hostname=self.host)

    def login(self, user: str, password: str) -> bool:
        """True when ``user`` can log in with ``password`` (the session closes immediately).

        Spoken on the wire (cleartext, MD5 or SCRAM-SHA-256, TLS when offered) so that a refusal is
        told by its SQLSTATE — ``28P01`` wrong password, ``28000`` no pg_hba entry, ``3D000`` no such
        database — and not by English text: a server with ``lc_messages = de_DE`` says
        "Passwort-Authentifizierung … fehlgeschlagen", and libpq hides the code of a failed connection.
        """
        state = self.refusal(user, password)
        if state is None:
            return True
        if state in REFUSED:
            return False
        raise StoreUnreachable(self.store.name, f"login attempt failed for another reason (SQLSTATE {state})",
                               hint="is the server up and accepting connections?")

    def refusal(self, user: str, password: str) -> str | None:
        """None when the login succeeds, else the SQLSTATE of the server's ErrorResponse."""
        params = f"user\0{user}\0database\0{self.store.database or 'postgres'}\0application_name\0piiguard-probe\0\0"
        body = struct.pack("!I", PROTOCOL_3) + params.encode()

        def exchange(raw: socket.socket) -> str | None:
            sock = self._tls_if_offered(raw)
            sock.sendall(struct.pack("!I", len(body) + 4) + body)
            scram: _Scram | None = None
            while True:
                kind = self.read_exact(sock, 1)
                length = struct.unpack("!I", self.read_exact(sock, 4))[0]
                if not 4 <= length <= 65536 or kind not in b"RE":
                    raise ProtocolError(self.store.name, "the server did not answer as PostgreSQL does")
                payload = self.read_exact(sock, length - 4)
                if kind == b"E":
                    return _sqlstate(payload) or "?????"
                code = struct.unpack("!I", payload[:4])[0]
                if code == AUTH_OK:
                    sock.sendall(b"X\0\0\0\4")  # Terminate
                    return None
                if code == AUTH_CLEARTEXT:
                    answer = password.encode() + b"\0"
                elif code == AUTH_MD5:  # MD5 is the protocol's, not a choice: md5(md5(password + user) + salt)
                    inner = hashlib.md5((password + user).encode()).hexdigest()
                    answer = b"md5" + hashlib.md5(inner.encode() + payload[4:8]).hexdigest().encode() + b"\0"
                elif code == AUTH_SASL:
                    if b"SCRAM-SHA-256\0" not in payload[4:]:
                        raise ProtocolError(self.store.name, "the server offers no SASL mechanism piiguard speaks")
                    scram = _Scram(password)
                    first = scram.client_first()
                    answer = b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first
                elif code == AUTH_SASL_CONTINUE and scram is not None:
                    answer = scram.client_final(payload[4:])
                elif code == AUTH_SASL_FINAL and scram is not None:
                    if not scram.verify(payload[4:]):
                        raise ProtocolError(self.store.name, "the server's SCRAM signature is wrong")
                    continue
                else:
                    raise ProtocolError(self.store.name, f"authentication method {code} is not one piiguard "
                                        "speaks (GSSAPI, SSPI)")
                sock.sendall(b"p" + struct.pack("!I", len(answer) + 4) + answer)

        return self.talk(exchange)

    @cached_property
    def session(self) -> psycopg.Connection[Any]:
        s = self.store
        try:
            return postgres.open_session(
                s, self.timeout, host=self.host, port=self.port, user=s.user, password=resolve_password(s),
                autocommit=True, application_name="piiguard", options="-c default_transaction_read_only=on")
        except psycopg.OperationalError as exc:
            # libpq keeps no SQLSTATE for a failed connection: ask the server again, on the wire
            try:
                state = self.refusal(s.user or "postgres", resolve_password(s) or "")
            except StoreUnreachable:
                state = None
            if state in REFUSED:
                raise AuthenticationFailed(s.name, "inside checks could not log in",
                                           hint="configure the store's user and password_env") from exc
            raise postgres.translate(s, exc) from exc

    def rows(self, query: str, *, hint: str | None = None) -> list[tuple[Any, ...]]:
        try:
            return list(self.session.execute(query).fetchall())
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PermissionDenied(self.store.name, "the checking role may not read this", hint=hint) from exc

    @cached_property
    def settings(self) -> dict[str, str]:
        return {str(n): str(v) for n, v in self.rows("SELECT name, setting FROM pg_settings")}

    @cached_property
    def hba(self) -> list[dict[str, Any]]:
        """Active pg_hba rules (line, type, database, user_name, address, netmask, auth_method)."""
        rows = self.rows(
            "SELECT line_number, type, database, user_name, address, netmask, auth_method, error "
            "FROM pg_hba_file_rules ORDER BY line_number",
            hint="GRANT SELECT ON pg_hba_file_rules and EXECUTE ON FUNCTION pg_hba_file_rules() to the role")
        keys = ("line", "type", "database", "user_name", "address", "netmask", "auth_method", "error")
        return [dict(zip(keys, r, strict=True)) for r in rows if r[7] is None]

    @cached_property
    def superusers(self) -> list[str]:
        return [str(r[0]) for r in self.rows("SELECT rolname FROM pg_roles WHERE rolsuper AND rolcanlogin")]



def _network(rule: dict[str, Any]) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    address, netmask = rule["address"], rule["netmask"]
    try:
        if netmask:  # IPv6 netmasks cannot be written as /ffff:…: count the bits
            prefix = bin(int(ipaddress.ip_address(netmask))).count("1")
            return ipaddress.ip_network(f"{address}/{prefix}", strict=False)
        return ipaddress.ip_network(str(address), strict=False)
    except ValueError:
        return None  # all, samehost, samenet, or a host name


def _is_open(rule: dict[str, Any]) -> bool:
    """A rule for every address: ``all``, 0.0.0.0/0 or ::/0."""
    net = _network(rule)
    return rule["address"] == "all" or (net is not None and net.prefixlen == 0)


def _remote(rule: dict[str, Any]) -> bool:
    """A host rule that admits clients from beyond this machine's loopback."""
    if not str(rule["type"]).startswith("host") or rule["auth_method"] == "reject":
        return False
    if rule["address"] == "samehost":
        return False
    net = _network(rule)
    return net is None or not net.is_loopback  # all, samenet, host names: assume remote


def _lines(rules: list[dict[str, Any]]) -> str:
    return ", ".join(f"line {r['line']} ({r['type']} {','.join(r['user_name'])} {r['address'] or ''} "
                     f"{r['auth_method']})".replace("  ", " ") for r in rules)


class PostgresCheck(Check[PostgresTarget]):
    engine = "postgres"


@checks.register("postgres.trust-auth")
class TrustAuth(PostgresCheck):
    """Logins accepted without a password (trust authentication).

    Risk: anyone who reaches the port logs in as the superuser and reads or changes every table.
    Seen from outside: a startup message for ``postgres`` (and the configured user) is answered with
    AuthenticationOk instead of a password request.
    Fix: replace ``trust`` in pg_hba.conf with ``scram-sha-256`` on every host line, then reload.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    anchors = ("CIS PostgreSQL 15 §3.1.2", "nuclei: postgres-unauth")

    def run(self, target: PostgresTarget) -> Outcome:
        open_users = [u for u in target.users() if target.startup(u) == "ok"]
        if open_users:
            return failed(f"startup as {', '.join(open_users)} answered with AuthenticationOk (no password)")
        return passed(f"a password is required for {', '.join(target.users())}")


@checks.register("postgres.default-password")
class DefaultPassword(PostgresCheck):
    """A default or empty password is accepted.

    Risk: the first passwords any scanner tries (``postgres``, ``password``, ``admin``, ``123456``,
    empty) open the database to anyone who reaches it.
    Fix: ``ALTER ROLE … PASSWORD`` with a long random secret kept in a secret store.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    frequent = False
    guesses = True
    anchors = ("nmap: pgsql-brute",)

    def run(self, target: PostgresTarget) -> Outcome:
        weak = []
        for user in target.users():
            if target.startup(user) != "password":
                continue  # no password asked (trust-auth reports it) or rejected outright
            weak += [f"{user} / {'(empty)' if not pw else 'a default password'}"
                     for pw in DEFAULT_PASSWORDS if target.login(user, pw)]
        if weak:
            return failed(f"login succeeded for {', '.join(weak)}")
        return passed(f"{len(DEFAULT_PASSWORDS)} default passwords refused for {', '.join(target.users())}")


@checks.register("postgres.hba-weak-method")
class HbaWeakMethod(PostgresCheck):
    """pg_hba host rules with trust, password (clear text) or ident authentication.

    Risk: ``trust`` needs no password; ``password`` sends it in clear text; ``ident`` believes what
    the client's machine says about its user.
    Fix: use ``scram-sha-256`` on every ``host``/``hostssl`` line.
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE
    anchors = ("CIS PostgreSQL 15 §3.1.2",)

    def run(self, target: PostgresTarget) -> Outcome:
        weak = [r for r in target.hba if str(r["type"]).startswith("host")
                and r["auth_method"] in ("trust", "password", "ident")]
        if weak:
            return failed(f"weak authentication on {_lines(weak)}")
        return passed(f"{sum(1 for r in target.hba if str(r['type']).startswith('host'))} host rules, "
                      "none with trust/password/ident")


@checks.register("postgres.hba-open-network")
class HbaOpenNetwork(PostgresCheck):
    """pg_hba host rules open to every address (0.0.0.0/0, ::/0, all).

    Risk: the database accepts logins from the whole internet whenever the port is reachable — the
    network is the only guard left.
    Fix: list the application networks explicitly in pg_hba.conf.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: PostgresTarget) -> Outcome:
        open_rules = [r for r in target.hba if str(r["type"]).startswith("host") and r["auth_method"] != "reject"
                      and _is_open(r)]
        if open_rules:
            return failed(f"open to all addresses: {_lines(open_rules)}")
        return passed("every host rule names specific networks")


@checks.register("postgres.superuser-remote")
class SuperuserRemote(PostgresCheck):
    """Superusers may log in from beyond this machine.

    Risk: a stolen or guessed superuser password is enough from anywhere the rule admits; superusers
    can read files and run programs on the server.
    Fix: allow superusers on ``local`` or loopback lines only; give applications non-superuser roles.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: PostgresTarget) -> Outcome:
        supers = set(target.superusers)
        risky = [r for r in target.hba if _remote(r) and ("all" in r["user_name"] or supers & set(r["user_name"]))]
        if risky:
            return failed(f"superusers ({', '.join(sorted(supers))}) admitted remotely by {_lines(risky)}")
        return passed("superusers are admitted from loopback or local sockets only")


@checks.register("postgres.listen-all")
class ListenAll(PostgresCheck):
    """The server listens on every network interface (listen_addresses = '*').

    Risk: every network the host is on can reach the port, including ones added later.
    Fix: set ``listen_addresses`` to the addresses the applications use.
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE

    def run(self, target: PostgresTarget) -> Outcome:
        value = target.settings.get("listen_addresses", "")
        addresses = {a.strip() for a in value.split(",")}
        if addresses & {"*", "0.0.0.0", "::"}:
            return failed(f"listen_addresses = '{value}'")
        return passed(f"listen_addresses = '{value}'")


@checks.register("postgres.tls-off")
class TlsOff(PostgresCheck):
    """Connections without TLS are possible (ssl = off, or host/hostnossl rules for remote clients).

    Risk: passwords (md5/clear text) and every row read cross the network readable by anyone on the
    path.
    Fix: ``ssl = on`` with a certificate, and ``hostssl`` (not ``host``) lines for remote clients.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: PostgresTarget) -> Outcome:
        if target.settings.get("ssl") != "on":
            return failed("ssl = off")
        plain = [r for r in target.hba
                 if (r["type"] == "host" and _remote(r)) or (r["type"] == "hostnossl" and r["auth_method"] != "reject")]
        if plain:
            return failed(f"ssl = on, but connections without TLS are admitted by {_lines(plain)}")
        return passed("ssl = on; remote clients only on hostssl lines")


@checks.register("postgres.password-encryption")
class PasswordEncryption(PostgresCheck):
    """Passwords are not hashed with SCRAM-SHA-256 (password_encryption, or md5 hashes stored).

    Risk: an md5 hash is as good as the password for logging in, and a leaked hash is cracked fast.
    Fix: ``password_encryption = 'scram-sha-256'`` and reset every role's password.
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE

    def run(self, target: PostgresTarget) -> Outcome:
        method = target.settings.get("password_encryption", "")
        if method != "scram-sha-256":
            return failed(f"password_encryption = '{method}'")
        try:
            md5 = target.rows("SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%'")
        except PermissionDenied:
            return passed("password_encryption = 'scram-sha-256' (stored hashes not readable by this role)")
        if md5:
            return failed(f"{len(md5)} role(s) still have md5 password hashes")
        return passed("password_encryption = 'scram-sha-256'; no md5 hashes stored")


@checks.register("postgres.log-connections")
class LogConnections(PostgresCheck):
    """Connections are not logged (log_connections = off).

    Risk: after a leak there is no record of who connected from where — the exposure cannot be scoped.
    Fix: ``log_connections = on`` (and ``log_disconnections = on``).
    """

    severity, vantage = Severity.LOW, Vantage.INSIDE
    anchors = ("CIS PostgreSQL 15 §3.1.20",)

    def run(self, target: PostgresTarget) -> Outcome:
        value = target.settings.get("log_connections", "off")
        return passed("log_connections = on") if value == "on" else failed(f"log_connections = {value}")


@checks.register("postgres.no-audit")
class NoAudit(PostgresCheck):
    """No audit extension is loaded (pgaudit not in shared_preload_libraries).

    Risk: reads of customer tables leave no trail; an incident cannot say what was taken.
    Fix: install pgaudit, add it to ``shared_preload_libraries`` and set ``pgaudit.log = 'read,ddl'``.
    """

    severity, vantage = Severity.LOW, Vantage.INSIDE
    anchors = ("CIS PostgreSQL 15 §3.2",)

    def run(self, target: PostgresTarget) -> Outcome:
        libs = target.settings.get("shared_preload_libraries", "")
        if "pgaudit" in {x.strip() for x in libs.split(",")}:
            return passed("pgaudit is loaded")
        return failed(f"shared_preload_libraries = '{libs}' (no pgaudit)")


@checks.register("postgres.many-superusers")
class ManySuperusers(PostgresCheck):
    """More than two roles can log in as superuser.

    Risk: every superuser login is a key to all data and to the server's files; each extra one is
    another password to leak.
    Fix: ``ALTER ROLE … NOSUPERUSER`` for roles that do not administer the server.
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE
    limit = 2

    def run(self, target: PostgresTarget) -> Outcome:
        supers = target.superusers
        if len(supers) > self.limit:
            return failed(f"{len(supers)} login superusers: {', '.join(supers)}")
        return passed(f"{len(supers)} login superuser(s)")


@checks.register("postgres.public-schema-create")
class PublicSchemaCreate(PostgresCheck):
    """Every role may create objects in schema public (CREATE granted to PUBLIC).

    Risk: any login can plant functions or tables that other roles, including superusers, run by
    search_path (CVE-2018-1058).
    Fix: ``REVOKE CREATE ON SCHEMA public FROM PUBLIC``.
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE
    anchors = ("CVE-2018-1058",)

    def run(self, target: PostgresTarget) -> Outcome:
        rows = target.rows(
            "SELECT count(*) FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a "
            "WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE'")
        if rows and rows[0][0]:
            return failed("CREATE on schema public is granted to PUBLIC")
        return passed("PUBLIC may not create in schema public")


targets.add("postgres", PostgresTarget)
