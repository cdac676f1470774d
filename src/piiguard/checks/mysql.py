"""MariaDB and MySQL protocol checks.

Outside checks read the server's greeting (its capability flags say whether it offers TLS) and try
logins with an empty and a few documented default passwords — a login is closed at once, nothing is
run. Inside checks read global variables, ``mysql.global_priv`` (MariaDB 10.4+) or ``mysql.user``,
``information_schema.USER_PRIVILEGES`` and ``information_schema.PLUGINS`` with the store's
credentials (SELECT on mysql.* and PROCESS are enough). Connections use TLS when the server offers
it (certificates are not verified: the probe sends nothing secret but the configured password,
which it sends only to the configured server).
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING, Any

from piiguard.checks.base import Check, Outcome, ProtocolError, Target, checks, failed, passed, targets
from piiguard.checks.cached import cached_property
from piiguard.config import resolve_password
from piiguard.engines import mysql
from piiguard.engines.mysql import driver_errors, unverified_context
from piiguard.errors import AuthenticationFailed, StoreUnreachable
from piiguard.model import Severity, Vantage
from piiguard.registry import driver

if TYPE_CHECKING:
    import pymysql
else:  # imported on first use: starting the CLI must not load every engine's driver
    pymysql = driver("pymysql")

DEFAULT_PASSWORDS = ("root", "password", "mysql", "admin", "123456")  # a small, documented list
CLIENT_SSL = 0x0800
ER_ACCESS_DENIED, ER_INSECURE_TRANSPORT, ER_ACCOUNT_LOCKED, ER_NO_SUCH_TABLE = 1045, 3159, 4151, 1146
TLS_OPTIONAL = {"check_hostname": False, "verify_mode": False}
ADMIN_USERS = ("root", "mariadb.sys")
ANY_NAME = "piiguard-no-such-user"
# Plugins whose empty authentication string means "no password" (MariaDB's and MySQL's).
PASSWORD_PLUGINS = (None, "", "mysql_native_password", "mysql_old_password", "caching_sha2_password",
                    "sha256_password")


def any_host(host: str) -> bool:
    """Whether an account's host pattern admits every client: ``%``, an empty host, patterns made of
    wildcards only (``%.%``, ``%.%.%.%``) and the all-zero netmask (``0.0.0.0/0.0.0.0``)."""
    if host == "" or ("%" in host and host.strip("%._") == ""):
        return True
    address, _, mask = host.partition("/")
    return mask == "0.0.0.0" and bool(address)


def no_password(account: dict[str, Any]) -> bool:
    """An unlocked account with a password-based plugin and an empty authentication string."""
    return bool(account["no_password"]) and not account["locked"] and account["plugin"] in PASSWORD_PLUGINS


class MySQLTarget(Target):
    """A MariaDB/MySQL server: its greeting, test logins, and an inside session."""

    default_port = 3306

    @cached_property
    def greeting(self) -> tuple[str, int]:
        """(server version, capability flags) from the handshake packet the server sends first."""

        def exchange(sock: socket.socket) -> bytes:
            length = int.from_bytes(self.read_exact(sock, 4)[:3], "little")
            return self.read_exact(sock, length) if 0 < length < 65536 else b""

        payload = self.talk(exchange)
        if not payload or payload[0] != 10 or b"\0" not in payload[1:]:
            raise ProtocolError(self.store.name, "the server did not greet as MariaDB/MySQL does")
        version, _, rest = payload[1:].partition(b"\0")
        if len(rest) < 15:
            raise ProtocolError(self.store.name, "truncated greeting")
        capabilities = struct.unpack("<H", rest[13:15])[0]
        return version.decode("ascii", "replace"), capabilities

    def connect(self, user: str, password: str, **kw: Any) -> pymysql.connections.Connection[Any]:
        """TLS exactly when the server offers it, with one shared context: PyMySQL would otherwise build
        a fresh one (reading the CA bundle, ~20 ms) for every connection — the cost of a watch cycle."""
        return mysql.open_session(self.store, self.timeout, user=user, password=password,
                                  use_tls_settings=False, **self.offered_tls(), **kw)

    def offered_tls(self) -> dict[str, Any]:
        """PyMySQL's TLS arguments for a probe: TLS (unverified) exactly when the greeting offers it."""
        return {"ssl": unverified_context()} if self.greeting[1] & CLIENT_SSL else {"ssl_disabled": True}

    def login(self, user: str, password: str) -> bool:
        """True when ``user``/``password`` logs in (over TLS when offered); the session closes at once."""
        try:
            self.connect(user, password).close()
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in (ER_ACCESS_DENIED, ER_INSECURE_TRANSPORT, ER_ACCOUNT_LOCKED):
                return False
            raise StoreUnreachable(self.store.name, f"login attempt failed (error {exc.args[0] if exc.args else '?'})"
                                   ) from exc
        except driver_errors() as exc:
            raise mysql.unreachable(self.store, exc) from exc
        return True

    @cached_property
    def session(self) -> pymysql.connections.Connection[Any]:
        s = self.store
        try:
            return mysql.open_session(s, self.timeout, user=s.user or "root", password=resolve_password(s) or "",
                                      query_timeout=self.timeout * 6,
                                      # the store's own TLS settings when it has some (verified, enforced)
                                      **({} if mysql.tls_params(s) else self.offered_tls()))
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == ER_ACCESS_DENIED:
                raise AuthenticationFailed(s.name, "inside checks could not log in",
                                           hint="configure the store's user and password_env") from exc
            raise StoreUnreachable(s.name, f"inside checks could not connect to {self.host}:{self.port}") from exc
        except driver_errors() as exc:
            raise mysql.unreachable(s, exc) from exc

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with self.session.cursor() as cur:
            cur.execute(query)
            return list(cur.fetchall())

    @cached_property
    def variables(self) -> dict[str, str]:
        return {str(k).lower(): str(v) for k, v in self.rows("SHOW GLOBAL VARIABLES")}

    @cached_property
    def accounts(self) -> list[dict[str, Any]]:
        """Login accounts (roles excluded): user, host, plugin, empty password, locked. MariaDB 10.4+
        keeps them in ``mysql.global_priv``; MySQL (and older MariaDB) in ``mysql.user``."""
        try:
            rows = self.rows(
                "SELECT user, host, JSON_VALUE(priv, '$.plugin'), "
                "COALESCE(JSON_VALUE(priv, '$.authentication_string'), '') = '', "
                "COALESCE(JSON_VALUE(priv, '$.account_locked'), 'false') IN ('true', '1') "
                "FROM mysql.global_priv WHERE COALESCE(JSON_VALUE(priv, '$.is_role'), 'false') NOT IN ('true', '1')")
        except pymysql.err.ProgrammingError as exc:
            if not exc.args or exc.args[0] != ER_NO_SUCH_TABLE:
                raise
            rows = self.user_table_accounts()
        keys = ("user", "host", "plugin", "no_password", "locked")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def user_table_accounts(self) -> list[tuple[Any, ...]]:
        """The same rows from ``mysql.user`` (MySQL 5.7/8, MariaDB < 10.4), whose columns differ by
        version: read from information_schema first. MySQL's roles are locked accounts there, so the
        checks, which skip locked accounts, skip them too; MariaDB marks them ``is_role``."""
        columns = {str(c).lower() for (c,) in self.rows(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'user'")}
        secret = "authentication_string" if "authentication_string" in columns else "password"
        plugin = "plugin" if "plugin" in columns else "''"
        locked = "account_locked = 'Y'" if "account_locked" in columns else "FALSE"
        roles = " WHERE is_role <> 'Y'" if "is_role" in columns else ""
        return self.rows(f"SELECT user, host, {plugin}, COALESCE({secret}, '') = '', {locked} FROM mysql.user{roles}")



def _names(accounts: list[dict[str, Any]]) -> str:
    return ", ".join(f"'{a['user']}'@'{a['host']}'" for a in accounts)


class MySQLCheck(Check[MySQLTarget]):
    engine = "mysql"


@checks.register("mysql.empty-password")
class EmptyPassword(MySQLCheck):
    """root, an anonymous user or the configured user logs in with an empty password.

    Risk: anyone who reaches the port reads every database.
    Fix: ``ALTER USER … IDENTIFIED BY`` a long random password; drop anonymous accounts.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    anchors = ("nmap: mysql-empty-password", "CIS MariaDB 10.11 §7.3")

    def run(self, target: MySQLTarget) -> Outcome:
        # An anonymous account ('') matches any user name; clients turn an empty name into the OS
        # user's, so the probe asks for a name that cannot exist instead.
        users = list(dict.fromkeys(["root", ANY_NAME, *([target.store.user] if target.store.user else [])]))
        shown = {ANY_NAME: "any user name (anonymous account)"}
        open_users = [shown.get(u, u) for u in users if target.login(u, "")]
        if open_users:
            return failed(f"empty password accepted for {', '.join(open_users)}")
        return passed(f"empty password refused for {', '.join(shown.get(u, u) for u in users)}")


@checks.register("mysql.default-password")
class DefaultPassword(MySQLCheck):
    """root logs in with a well-known default password.

    Risk: ``root``/``password``/``mysql``/``admin``/``123456`` are the first any scanner tries.
    Fix: a long random root password, and root allowed from localhost only.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    frequent = False
    guesses = True
    anchors = ("nmap: mysql-brute",)

    def run(self, target: MySQLTarget) -> Outcome:
        if target.login("root", ""):
            return passed("root needs no password at all (see mysql.empty-password)")
        if any(target.login("root", pw) for pw in DEFAULT_PASSWORDS):
            return failed("root logged in with a default password")
        return passed(f"{len(DEFAULT_PASSWORDS)} default passwords refused for root")


@checks.register("mysql.no-tls")
class NoTls(MySQLCheck):
    """The server offers no TLS (its greeting lacks the SSL capability).

    Risk: passwords and every row read cross the network readable by anyone on the path.
    Fix: configure ``ssl_cert``/``ssl_key`` and ``require_secure_transport = ON``.
    """

    severity, vantage = Severity.HIGH, Vantage.OUTSIDE

    def run(self, target: MySQLTarget) -> Outcome:
        version, capabilities = target.greeting
        if capabilities & CLIENT_SSL:
            return passed(f"{version} offers TLS")
        return failed(f"{version} does not offer TLS")


@checks.register("mysql.skip-grant-tables")
class SkipGrantTables(MySQLCheck):
    """The server runs with skip-grant-tables: every login succeeds, with any password.

    Risk: it is the "I lost the root password" switch left on — the database has no access control.
    Fix: restart without ``--skip-grant-tables``.
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE

    def run(self, target: MySQLTarget) -> Outcome:
        value = target.variables.get("skip_grant_tables", "OFF")
        return failed("skip_grant_tables = ON") if value == "ON" else passed("skip_grant_tables = OFF")


@checks.register("mysql.wildcard-host")
class WildcardHost(MySQLCheck):
    """Accounts that may log in from any host ('%', '%.%', '0.0.0.0/0.0.0.0' and the like).

    Risk: a leaked password works from anywhere that reaches the port.
    Fix: name the application hosts or networks (``'app'@'10.0.2.%'``) instead of ``%``.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: MySQLTarget) -> Outcome:
        wide = [a for a in target.accounts if any_host(str(a["host"])) and not a["locked"]]
        if wide:
            return failed(f"any host may log in as {_names(wide)}")
        return passed(f"{len(target.accounts)} accounts, none for any host")


@checks.register("mysql.anonymous-account")
class AnonymousAccount(MySQLCheck):
    """Anonymous accounts (user '') exist.

    Risk: any user name matches them; what they may do, anyone may do.
    Fix: ``DROP USER ''@'host'`` for each (mariadb-secure-installation does this).
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE
    anchors = ("CIS MariaDB 10.11 §7.4",)

    def run(self, target: MySQLTarget) -> Outcome:
        anonymous = [a for a in target.accounts if a["user"] == "" and not a["locked"]]
        if anonymous:
            return failed(f"anonymous accounts: {_names(anonymous)}")
        return passed("no anonymous accounts")


@checks.register("mysql.empty-auth-string")
class EmptyAuthString(MySQLCheck):
    """Accounts with no password (empty authentication string, password-based plugin), at any host.

    Risk: the account opens with an empty password from every host it is allowed — for ``'%'``, from
    anywhere that reaches the port. An outside probe cannot know such an account's name: this audit
    is what finds it (and containment locks it once the store is exposed).
    Fix: give each a password, lock it (``ACCOUNT LOCK``), or switch it to ``unix_socket``.
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE

    def run(self, target: MySQLTarget) -> Outcome:
        empty = [a for a in target.accounts if no_password(a)]
        if empty:
            return failed(f"no password: {_names(empty)}")
        return passed("every unlocked account has a password or socket authentication")


@checks.register("mysql.insecure-transport")
class InsecureTransport(MySQLCheck):
    """Clients may connect without TLS (require_secure_transport = OFF).

    Risk: a client configured without TLS sends its password and reads data in clear text.
    Fix: ``require_secure_transport = ON`` once every client uses TLS.
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE

    def run(self, target: MySQLTarget) -> Outcome:
        value = target.variables.get("require_secure_transport", "OFF")
        if value == "ON":
            return passed("require_secure_transport = ON")
        return failed(f"require_secure_transport = {value}")


@checks.register("mysql.local-infile")
class LocalInfile(MySQLCheck):
    """LOAD DATA LOCAL INFILE is enabled (local_infile = ON).

    Risk: a malicious server or SQL injection reads files from client machines; data exfiltration
    tools rely on it.
    Fix: ``local_infile = 0``.
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE
    anchors = ("CIS MariaDB 10.11 §4.6",)

    def run(self, target: MySQLTarget) -> Outcome:
        value = target.variables.get("local_infile", "ON")
        return failed(f"local_infile = {value}") if value == "ON" else passed(f"local_infile = {value}")


@checks.register("mysql.admin-privileges")
class AdminPrivileges(MySQLCheck):
    """FILE, SUPER or PROCESS granted to accounts other than the administrators.

    Risk: FILE reads and writes server files; SUPER bypasses limits and read_only; PROCESS shows
    every running statement, with its data.
    Fix: ``REVOKE FILE, SUPER, PROCESS ON *.* FROM`` application accounts.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE
    anchors = ("CIS MariaDB 10.11 §4.4",)

    def run(self, target: MySQLTarget) -> Outcome:
        admins = {*ADMIN_USERS, *([target.store.user] if target.store.user else [])}
        rows = target.rows("SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES "
                           "WHERE PRIVILEGE_TYPE IN ('FILE', 'SUPER', 'PROCESS')")
        risky = sorted({f"{g} {p}" for g, p in rows if str(g).split("@")[0].strip("'") not in admins})
        if risky:
            return failed(f"granted: {', '.join(risky)}")
        return passed("FILE, SUPER and PROCESS are held by administrators only")


@checks.register("mysql.bind-all")
class BindAll(MySQLCheck):
    """The server listens on every interface (bind_address empty, *, 0.0.0.0 or ::).

    Risk: every network the host is on can reach the port, including ones added later.
    Fix: ``bind_address`` = the address the applications use.
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE

    def run(self, target: MySQLTarget) -> Outcome:
        value = target.variables.get("bind_address", "")
        if value in ("", "*", "0.0.0.0", "::"):
            return failed(f"bind_address = '{value}'")
        return passed(f"bind_address = '{value}'")


@checks.register("mysql.no-audit")
class NoAudit(MySQLCheck):
    """No access trail: neither the audit plugin logging nor the general log.

    Risk: after a leak there is no record of who connected and what they read.
    Fix: ``plugin_load_add = server_audit`` with ``server_audit_logging = ON`` (events CONNECT,QUERY).
    """

    severity, vantage = Severity.LOW, Vantage.INSIDE
    anchors = ("nmap: mysql-audit",)

    def run(self, target: MySQLTarget) -> Outcome:
        v = target.variables
        if v.get("server_audit_logging") == "ON":
            return passed("server_audit is logging")
        if v.get("general_log") == "ON":
            return passed("the general log is on")
        return failed("server_audit is not logging and general_log = OFF")


targets.add("mysql", MySQLTarget)
