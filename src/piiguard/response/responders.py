"""The kill switch: responders that shut every door the exposed data opens, mapped to the company's
own schema in ``piiguard.yaml`` (``respond: responders:``). Registered like every other plugin.

Each responder plans (counts what it would change, reading only), then applies in batches, and is
idempotent: a run stopped halfway and started again changes only what is left. Scope is the
incident's subjects, or everyone (``--everyone``: a reset for all users).

- ``sql-sessions``: delete the subjects' rows from a sessions table — they must log in again.
- ``redis-sessions``: delete session keys (``key: "session:{subject}"``) and/or the keys listed in a
  per-user set (``set: "user-sessions:{subject}"``), pipelined.
- ``sql-tokens``: set a revocation time on access and refresh tokens not yet revoked. Logging out
  does not end tokens already issued; this does.
- ``oauth-grants``: revoke third-party integration grants (voice assistants, automation services) at
  the authorization server's RFC 7009 endpoint, then mark them relink-required.
- ``password-reset``: set a forced-reset flag.

SQL responders speak PostgreSQL; the store they name needs UPDATE/DELETE on the table.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from piiguard.config import options_from
from piiguard.connectors.postgres import any_of
from piiguard.engines.postgres import connect
from piiguard.errors import ConfigError, StoreError, UsageError
from piiguard.model import Store
from piiguard.registry import Registry, driver

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
else:  # imported on first use: starting the CLI must not load every engine's driver
    psycopg = driver("psycopg")
    sql = driver("psycopg.sql")

BATCH = 10_000
Progress = Callable[[int], None]


class Responder(ABC):
    """One kind of door. ``Options`` is a frozen dataclass; YAML keys are checked against it."""

    Options: ClassVar[type[Any]]
    # the engines its ``store`` may be (``validate`` refuses another: a kill switch pointed at a store
    # it cannot speak to would be found in the middle of an incident)
    engines: ClassVar[tuple[str, ...]] = ("postgres",)

    def __init__(self, options: Any, stores: Mapping[str, Store], timeout: float = 30.0) -> None:
        self.options, self.stores, self.timeout = options, stores, timeout

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str) -> Any:
        return options_from(cls.Options, raw, where)

    def store(self) -> Store:
        name = self.options.store
        if name not in self.stores:
            raise UsageError(f"responder store {name!r} is not in the configuration")
        return self.stores[name]

    @abstractmethod
    def plan(self, subjects: Sequence[str] | None) -> str:
        """What apply would change, with a count (reads only)."""

    @abstractmethod
    def apply(self, subjects: Sequence[str] | None, progress: Progress) -> int:
        """Change it, in batches; returns how many rows, keys or grants changed."""


responders: Registry[type[Responder]] = Registry("responder", Responder)


T = TypeVar("T")


def _batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _connect(store: Store, timeout: float) -> psycopg.Connection[Any]:
    return connect(store, timeout, application="piiguard-respond")


def _table(name: str) -> sql.Composed:
    schema, dot, table = name.rpartition(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema if dot else "public"), sql.Identifier(table))


class SQLResponder(Responder):
    """A statement per batch of subjects: ``WHERE subject_column = ANY(batch) AND <not done yet>``."""

    verb: ClassVar[str]
    match: sql.Composable  # the subject condition, typed like the column (set per session)

    def __init__(self, options: Any, stores: Mapping[str, Store], timeout: float = 30.0) -> None:
        super().__init__(options, stores, timeout)
        self.match = sql.SQL("FALSE")  # here, not in the class body: psycopg loads when a responder is built

    @abstractmethod
    def statement(self, everyone: bool) -> sql.Composed: ...

    @abstractmethod
    def count(self, everyone: bool) -> sql.Composed: ...

    def _run(self, subjects: Sequence[str] | None, progress: Progress | None) -> int:
        store = self.store()
        changed = 0
        try:
            with _connect(store, self.timeout) as conn:
                self.match = any_of(conn, _table(self.options.table), self.options.subject_column)
                query = self.statement(subjects is None)
                if subjects is None:
                    changed = conn.execute(query).rowcount
                    if progress:
                        progress(changed)
                    return changed
                for batch in _batches(list(subjects)):
                    rows = conn.execute(query, [list(batch)])
                    changed += max(rows.rowcount, 0)
                    if progress:
                        progress(len(batch))
        except psycopg.Error as exc:  # the driver's text can quote values: keep only the class
            raise StoreError(store.name, f"{self.verb} failed ({type(exc).__name__})",
                             collection=self.options.table) from exc
        return changed

    def plan(self, subjects: Sequence[str] | None) -> str:
        store = self.store()
        with _connect(store, self.timeout) as conn:
            self.match = any_of(conn, _table(self.options.table), self.options.subject_column)
            query = self.count(subjects is None)
            if subjects is None:
                row = conn.execute(query).fetchone()
                n = int(row[0]) if row else 0
            else:
                n = sum(int((conn.execute(query, [list(b)]).fetchone() or (0,))[0]) for b in _batches(list(subjects)))
        who = "everyone" if subjects is None else f"{len(subjects):,} subjects"
        return f"{self.verb} {n:,} row(s) in {store.name}.{self.options.table} ({who})"

    def apply(self, subjects: Sequence[str] | None, progress: Progress) -> int:
        return self._run(subjects, progress)

    def where(self, everyone: bool) -> sql.Composable:
        return sql.SQL("TRUE") if everyone else self.match


@dataclass(frozen=True)
class SessionsOptions:
    store: str
    table: str
    subject_column: str


@responders.register("sql-sessions")
class SQLSessions(SQLResponder):
    """Delete the subjects' sessions from a SQL table: every device must log in again."""

    Options = SessionsOptions
    verb = "delete sessions:"

    def statement(self, everyone: bool) -> sql.Composed:
        return sql.SQL("DELETE FROM {} WHERE {}").format(_table(self.options.table), self.where(everyone))

    def count(self, everyone: bool) -> sql.Composed:
        return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(_table(self.options.table), self.where(everyone))


@dataclass(frozen=True)
class TokensOptions:
    store: str
    table: str
    subject_column: str
    revoked_column: str = "revoked_at"


@responders.register("sql-tokens")
class SQLTokens(SQLResponder):
    """Revoke the subjects' access and refresh tokens: set the revocation time where it is empty."""

    Options = TokensOptions
    verb = "revoke tokens:"

    def _pending(self, everyone: bool) -> sql.Composed:
        return sql.SQL("{} AND {} IS NULL").format(self.where(everyone), sql.Identifier(self.options.revoked_column))

    def statement(self, everyone: bool) -> sql.Composed:
        return sql.SQL("UPDATE {} SET {} = now() WHERE {}").format(
            _table(self.options.table), sql.Identifier(self.options.revoked_column), self._pending(everyone))

    def count(self, everyone: bool) -> sql.Composed:
        return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(_table(self.options.table), self._pending(everyone))


@dataclass(frozen=True)
class ResetOptions:
    store: str
    table: str
    subject_column: str
    flag_column: str = "must_reset_password"


@responders.register("password-reset")
class PasswordReset(SQLResponder):
    """Force a password reset at the next login: set the flag where it is not set."""

    Options = ResetOptions
    verb = "force password reset:"

    def _pending(self, everyone: bool) -> sql.Composed:
        return sql.SQL("{} AND {} IS NOT TRUE").format(self.where(everyone), sql.Identifier(self.options.flag_column))

    def statement(self, everyone: bool) -> sql.Composed:
        return sql.SQL("UPDATE {} SET {} = true WHERE {}").format(
            _table(self.options.table), sql.Identifier(self.options.flag_column), self._pending(everyone))

    def count(self, everyone: bool) -> sql.Composed:
        return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(_table(self.options.table), self._pending(everyone))


@dataclass(frozen=True)
class RedisSessionsOptions:
    store: str
    key: str = ""  # e.g. "session:{subject}": one key per user
    set: str = ""  # e.g. "user-sessions:{subject}": a set whose members are session keys

    def __post_init__(self) -> None:
        if not (self.key or self.set) or any(p and "{subject}" not in p for p in (self.key, self.set)):
            raise TypeError("give key and/or set, each with {subject} in it")


@responders.register("redis-sessions")
class RedisSessions(Responder):
    """Delete the subjects' session keys in Redis (UNLINK, pipelined). Everyone: not supported — that
    is ``FLUSHDB`` on a session database, a decision for a person, not a tool."""

    Options = RedisSessionsOptions
    engines = ("redis",)

    def _client(self) -> Any:
        from piiguard.engines import redis

        # not decoded: session keys are whatever bytes the application chose; no retry, TLS as configured
        return redis.client(self.store(), self.timeout, decode_responses=False)

    def _keys(self, client: Any, batch: Sequence[str]) -> list[str]:
        keys = [self.options.key.format(subject=s) for s in batch] if self.options.key else []
        if self.options.set:
            sets = [self.options.set.format(subject=s) for s in batch]
            pipe = client.pipeline(transaction=False)
            for name in sets:
                pipe.smembers(name)
            keys += [m.decode() if isinstance(m, bytes) else m for members in pipe.execute() for m in members]
            keys += sets
        return keys

    def plan(self, subjects: Sequence[str] | None) -> str:
        if subjects is None:
            raise UsageError("redis-sessions revokes the incident's subjects only, not everyone")
        with self._client() as client:
            n = 0
            for batch in _batches(list(subjects)):
                keys = self._keys(client, batch)
                pipe = client.pipeline(transaction=False)
                for k in keys:
                    pipe.exists(k)
                n += sum(pipe.execute())
        return f"delete {n:,} session key(s) in {self.options.store} ({len(subjects):,} subjects)"

    def apply(self, subjects: Sequence[str] | None, progress: Progress) -> int:
        if subjects is None:
            raise UsageError("redis-sessions revokes the incident's subjects only, not everyone")
        deleted = 0
        with self._client() as client:
            for batch in _batches(list(subjects)):
                keys = self._keys(client, batch)
                for chunk in _batches(keys, 1000):
                    deleted += int(client.unlink(*chunk)) if chunk else 0
                progress(len(batch))
        return deleted


@dataclass(frozen=True)
class GrantsOptions:
    store: str
    table: str
    subject_column: str
    token_column: str
    revocation_endpoint: str
    client_id: str
    client_secret_env: str = ""
    relink_column: str = "relink_required"
    token_type_hint: str = "refresh_token"
    parallel: int = 8


@responders.register("oauth-grants")
class OAuthGrants(Responder):
    """Revoke third-party integration grants at the authorization server (RFC 7009), then mark each
    relink-required so the user is asked to link the integration again. A grant is marked only after
    the server accepted its revocation (200), so a failed call is retried on the next run."""

    Options = GrantsOptions

    def _grants(self, conn: psycopg.Connection[Any], subjects: Sequence[str] | None) -> list[tuple[Any, str]]:
        o = self.options
        where = sql.SQL("TRUE") if subjects is None else any_of(conn, _table(o.table), o.subject_column)
        query = sql.SQL("SELECT ctid::text, {} FROM {} WHERE {} AND {} IS NOT TRUE").format(
            sql.Identifier(o.token_column), _table(o.table), where, sql.Identifier(o.relink_column))
        return [(r[0], str(r[1])) for r in conn.execute(query, [list(subjects)] if subjects is not None else None)]

    def plan(self, subjects: Sequence[str] | None) -> str:
        with _connect(self.store(), self.timeout) as conn:
            n = len(self._grants(conn, subjects))
        return f"revoke {n:,} integration grant(s) at {self.options.revocation_endpoint} and mark them relink-required"

    def _revoke(self, token: str) -> bool:
        o = self.options
        secret = os.environ.get(o.client_secret_env, "") if o.client_secret_env else ""
        body = urllib.parse.urlencode({"token": token, "token_type_hint": o.token_type_hint}).encode()
        auth = base64.b64encode(f"{urllib.parse.quote(o.client_id)}:{urllib.parse.quote(secret)}".encode()).decode()
        request = urllib.request.Request(o.revocation_endpoint, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {auth}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return bool(response.status == 200)  # RFC 7009 §2.2: 200 also for an already-invalid token
        except (urllib.error.URLError, OSError):
            return False

    def apply(self, subjects: Sequence[str] | None, progress: Progress) -> int:
        o = self.options
        store = self.store()
        with _connect(store, self.timeout) as conn:
            grants = self._grants(conn, subjects)
            revoked = 0
            with ThreadPoolExecutor(max(1, o.parallel)) as pool:
                for batch in _batches(grants, 500):
                    ok = list(pool.map(lambda g: self._revoke(g[1]), batch))
                    done = [g[0] for g, accepted in zip(batch, ok, strict=True) if accepted]
                    if done:
                        conn.execute(sql.SQL("UPDATE {} SET {} = true WHERE ctid = ANY(%s::tid[])").format(
                            _table(o.table), sql.Identifier(o.relink_column)), [done])
                    revoked += len(done)
                    progress(len(batch))
        if revoked < len(grants):
            raise StoreError(store.name, f"{len(grants) - revoked} of {len(grants)} revocations were not accepted "
                             f"by {o.revocation_endpoint}", hint="run again: accepted ones are not repeated")
        return revoked


def build(config: Mapping[str, Any], stores: Mapping[str, Store]) -> list[tuple[str, Responder]]:
    """The configured responders, in order: ``respond: responders: [{kind: …, …}]``."""
    out = []
    for i, raw in enumerate(config.get("responders") or []):
        where = f"respond.responders[{i}]"
        spec = dict(raw)
        kind = str(spec.pop("kind", ""))
        if kind not in responders:
            raise ConfigError([f"{where}.kind: unknown responder {kind!r} (known: {', '.join(responders.names())})"])
        cls = responders.get(kind)
        out.append((kind, cls(cls.parse(spec, where), stores)))
    return out
