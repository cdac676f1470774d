"""Redis protocol checks.

Outside checks speak RESP on a plain socket with no credentials: ``INFO`` (read-only) and ``AUTH``
with a few documented default passwords — nothing that writes or configures. Inside checks log in
as the store's user (an administrator: they need ``ACL``, ``CONFIG GET`` and ``INFO``) and read the
effective configuration; command permissions of the other users are tested with ``ACL DRYRUN``,
which executes nothing. Redis keeps no access log: ``ACL LOG`` records failures only.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from typing import TYPE_CHECKING, Any

from piiguard.checks.base import Check, Outcome, ProtocolError, Target, Unsupported, checks, failed, passed, targets
from piiguard.checks.cached import cached_property
from piiguard.engines import redis as engine
from piiguard.errors import AuthenticationFailed
from piiguard.model import Severity, Vantage
from piiguard.registry import driver

if TYPE_CHECKING:
    import redis
    import redis.backoff
    import redis.retry
else:  # imported on first use: starting the CLI must not load every engine's driver
    redis = driver("redis")

DEFAULT_PASSWORDS = ("foobared", "redis", "password", "123456", "admin")  # foobared: redis.conf's example
# The most common passwords of the public breach-corpus top lists, plus Redis's own examples. Compared
# as SHA-256 digests with what ACL GETUSER returns: no password is ever sent to the server.
WEAK_PASSWORDS = (*DEFAULT_PASSWORDS, "123456789", "12345678", "12345", "1234", "qwerty", "password1", "111111",
                  "123123", "1234567890", "000000", "password123", "letmein", "welcome", "abc123", "iloveyou",
                  "changeme", "secret", "root", "test", "default")
WEAK_DIGESTS = frozenset(hashlib.sha256(p.encode()).hexdigest() for p in WEAK_PASSWORDS)
DANGEROUS = (("CONFIG", "GET", "dir"), ("MODULE", "LIST"), ("DEBUG", "SLEEP", "0"), ("REPLICAOF", "NO", "ONE"),
             ("EVAL", "return 1", "0"))
SUSPICIOUS_DIRS = (".ssh", "cron", "/etc", "/var/spool", "/root", "/var/www", "/usr/")
SUSPICIOUS_FILES = ("authorized_keys", "crontab", "root", "id_rsa", ".bashrc", ".profile", "shell.php")


def _command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for p in parts:
        b = p.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RedisTarget(Target):
    """A Redis server: raw RESP probes from outside, an administrator session inside."""

    default_port = 6379

    def probe(self, *command: str) -> str:
        """Send one command on a fresh, unauthenticated connection; return the reply's first line."""
        return self.reply(*command).split(b"\r\n", 1)[0].decode("utf-8", "replace")

    def reply(self, *command: str, limit: int = 0) -> bytes:
        """The raw reply to one command on a fresh, unauthenticated connection: its first line, and
        when ``limit`` is given the bulk string that follows (at most ``limit`` bytes of it), so
        discovery reads ``redis_version`` with the same exchange ``redis.no-auth`` uses."""

        def exchange(sock: socket.socket) -> bytes:
            sock.sendall(_command(*command))
            reply = b""
            while b"\r\n" not in reply and len(reply) <= 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ProtocolError(self.store.name, "the server closed the connection without a reply")
                reply += chunk
            head = reply.split(b"\r\n", 1)[0]
            if limit and head[:1] == b"$" and head[1:].isdigit():
                want = min(int(head[1:]), limit) + len(head) + 2
                while len(reply) < want:
                    chunk = sock.recv(min(4096, want - len(reply)))
                    if not chunk:
                        break
                    reply += chunk
            return reply[:len(head) + 2 + limit] if limit else reply

        reply = self.talk(exchange)
        if not reply or reply[:1] not in (b"+", b"-", b"$", b"*", b":"):
            raise ProtocolError(self.store.name, "the server did not answer as Redis does")
        return reply

    @cached_property
    def session(self) -> redis.Redis:
        s = self.store
        try:
            client = engine.client(s, self.timeout, host=self.host, port=self.port)
        except AuthenticationFailed as exc:
            raise AuthenticationFailed(s.name, "inside checks could not log in",
                                       hint="configure the store's user and password_env (an ACL admin)") from exc
        return client

    def config(self, name: str) -> str:
        value = self.session.config_get(name)
        return str(value.get(name) or "")

    @cached_property
    def users(self) -> list[str]:
        return [str(u) for u in self.session.acl_users()]

    @cached_property
    def acl(self) -> list[str]:
        return [str(rule) for rule in self.session.acl_list()]

    def allowed(self, user: str, *command: str) -> bool:
        try:
            reply: Any = self.session.execute_command("ACL", "DRYRUN", user, *command)  # type: ignore[no-untyped-call]
        except redis.ResponseError as exc:
            # Redis < 7 (and some forks) have no ACL DRYRUN; Redis's own error words are not localised
            if "unknown subcommand" in str(exc).lower() or "unknown command" in str(exc).lower():
                raise Unsupported(self.store.name, "the server has no ACL DRYRUN (Redis 7+) to test permissions "
                                  "without running them") from exc
            raise
        return str(reply) == "OK"



def _loopback_only(bind: str) -> bool:
    addresses = [a.lstrip("-") for a in bind.split()] or ["*"]
    for a in addresses:
        try:
            if not ipaddress.ip_address(a).is_loopback:
                return False
        except ValueError:
            return False  # *, a host name
    return True


class RedisCheck(Check[RedisTarget]):
    engine = "redis"


@checks.register("redis.no-auth")
class NoAuth(RedisCheck):
    """Commands run without authentication.

    Risk: anyone who reaches the port reads and writes every key — and with CONFIG can write files
    on the server. Seen from outside: ``INFO`` is answered instead of ``-NOAUTH``.
    Fix: set ``requirepass`` or an ACL default user with a password (or ``user default off``); keep
    ``protected-mode yes``.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    anchors = ("nmap: redis-info", "nuclei: redis-default-logins")

    def run(self, target: RedisTarget) -> Outcome:
        reply = target.probe("INFO", "server")
        if reply.startswith("$"):
            return failed("INFO was answered without authentication")
        return passed(f"INFO refused: {reply[:60]}")


@checks.register("redis.weak-password")
class WeakPassword(RedisCheck):
    """The default user's password is a well-known default.

    Risk: ``foobared`` (redis.conf's example) and a handful of others are the first passwords any
    scanner tries.
    Fix: a long random password, or ``user default off`` and named ACL users.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    frequent = False
    guesses = True

    def run(self, target: RedisTarget) -> Outcome:
        if target.probe("INFO", "server").startswith("$"):
            return passed("no password is asked for (see redis.no-auth)")
        accepted = sum(1 for pw in DEFAULT_PASSWORDS if target.probe("AUTH", pw).startswith("+OK"))
        if accepted:
            return failed("AUTH succeeded with a default password")
        return passed(f"{len(DEFAULT_PASSWORDS)} default passwords refused")


@checks.register("redis.default-user-nopass")
class DefaultUserNopass(RedisCheck):
    """The ACL default user is enabled without a password (nopass).

    Risk: every connection starts as this user; whatever it may run, anyone may run.
    Fix: ``ACL SETUSER default off`` or give it a password (``>secret``) and least privileges.
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE

    def run(self, target: RedisTarget) -> Outcome:
        rule = next((r for r in target.acl if r.startswith("user default ")), "")
        words = rule.split()
        if " on " in f" {rule} " and "nopass" in words:
            return failed("user default is on with nopass")
        return passed("user default is off or has a password")


@checks.register("redis.acl-weak-password")
class AclWeakPassword(RedisCheck):
    """An enabled ACL user has a password from the list of the most common ones.

    Risk: ``password123``, ``changeme`` and their kind are the first guesses of every credential-
    stuffing run; one enabled user with one of them opens whatever that user may read.
    Checked without guessing: ``ACL GETUSER`` gives each password's SHA-256, compared with the
    digests of a short built-in list (``WEAK_PASSWORDS``); nothing is sent to log in.
    Fix: ``ACL SETUSER name resetpass >long-random-password`` (or ``off`` for a user nobody needs).
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: RedisTarget) -> Outcome:
        weak = []
        for user in target.users:
            info: Any = target.session.acl_getuser(user)
            flags = [str(f) for f in info.get("flags", [])] if info else []
            if "on" in flags and any(str(d) in WEAK_DIGESTS for d in info.get("passwords", [])):
                weak.append(user)
        if weak:
            return failed(f"a common password is set for user(s): {', '.join(_names(weak))}")
        return passed(f"{len(target.users)} user(s), none with one of {len(WEAK_PASSWORDS)} common passwords")


@checks.register("redis.protected-mode-off")
class ProtectedModeOff(RedisCheck):
    """protected-mode is off while Redis listens beyond loopback.

    Risk: protected mode is Redis's last guard when no password is set; without it an open port
    serves the world.
    Fix: ``protected-mode yes``, or bind to loopback and the application network only.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: RedisTarget) -> Outcome:
        mode, bind = target.config("protected-mode"), target.config("bind")
        if mode == "no" and not _loopback_only(bind):
            return failed(f"protected-mode no, bind '{bind}'")
        return passed(f"protected-mode {mode}, bind '{bind}'")


@checks.register("redis.bind-all")
class BindAll(RedisCheck):
    """Redis listens on every interface or on a non-loopback address.

    Risk: every network the host is on can reach the port, including ones added later.
    Fix: ``bind 127.0.0.1 -::1`` plus only the application's address.
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE

    def run(self, target: RedisTarget) -> Outcome:
        bind = target.config("bind")
        if not _loopback_only(bind):
            return failed(f"bind '{bind}'")
        return passed(f"bind '{bind}'")


@checks.register("redis.dangerous-commands")
class DangerousCommands(RedisCheck):
    """Application users may run CONFIG, MODULE, DEBUG, REPLICAOF or EVAL.

    Risk: these turn a data leak into a server takeover (CONFIG SET dir + SAVE writes files; MODULE
    LOAD runs code; REPLICAOF hands the data to another server).
    Fix: ``ACL SETUSER app -@dangerous -eval -evalsha`` for every user but the administrator.
    Checked with ``ACL DRYRUN``: nothing is executed.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: RedisTarget) -> Outcome:
        admin = target.store.user or "default"
        enabled = [u for u in target.users if u != admin
                   and any(r.startswith(f"user {u} ") and " on " in f" {r} " for r in target.acl)]
        risky = [f"{_name(u)}: {cmd[0]}" for u in enabled for cmd in DANGEROUS if target.allowed(u, *cmd)]
        if risky:
            return failed(f"allowed: {', '.join(risky)}")
        return passed(f"{len(enabled)} application user(s), none may run {', '.join(c[0] for c in DANGEROUS)}")


@checks.register("redis.compromise-indicators")
class CompromiseIndicators(RedisCheck):
    """Signs of a known Redis attack: dir or dbfilename aimed at .ssh, cron or web roots, or an
    unexpected replica-of.

    Risk: these are the footprints of the attacks that write SSH keys or cron jobs through SAVE, or
    copy all data to the attacker's server with REPLICAOF.
    Fix: treat the server as compromised: rotate credentials, restore ``dir``/``dbfilename``,
    ``REPLICAOF NO ONE``, and inspect the host.
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE

    def run(self, target: RedisTarget) -> Outcome:
        signs = indicators(target.config("dir"), target.config("dbfilename"),
                           target.session.info("replication"))
        if signs:
            return failed("; ".join(signs))
        return passed("dir, dbfilename and replication look ordinary")


def _name(user: str) -> str:
    """An ACL user name as evidence may show it: the server's users are named by whoever made them
    (``ops.lead@example.com``), so a name goes through :func:`piiguard.connectors.labels.label`."""
    from piiguard.connectors.labels import label  # the classifier loads on first use, not with the checks

    return label(user)


def _names(users: list[str]) -> list[str]:
    return [_name(u) for u in users]


def indicators(directory: str, dbfilename: str, replication: dict[str, Any]) -> list[str]:
    signs = [f"dir '{directory}'" for s in SUSPICIOUS_DIRS if s in directory][:1]
    signs += [f"dbfilename '{dbfilename}'" for s in SUSPICIOUS_FILES if s in dbfilename.lower()][:1]
    if replication.get("role") == "slave":
        signs.append(f"replica of {replication.get('master_host')}:{replication.get('master_port')}")
    return signs


@checks.register("redis.no-tls")
class NoTls(RedisCheck):
    """No TLS port: every command and reply crosses the network in clear text.

    Risk: passwords (AUTH) and every value read are visible to anyone on the path.
    Fix: configure ``tls-port`` with a certificate and move clients to it (``port 0`` to close
    the plain port).
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE

    def run(self, target: RedisTarget) -> Outcome:
        port = target.config("tls-port")
        if port in ("", "0"):
            return failed("tls-port 0")
        return passed(f"tls-port {port}")


targets.add("redis", RedisTarget)
