"""The kill switch: responders that shut every door the exposed data opens, mapped to the company's
own schema in ``piiguard.yaml`` (``respond: responders:``). Registered like every other plugin;
``piiguard list responders`` lists them and ``piiguard show responder KIND`` prints one's options.

Each responder plans (counts what it would change, reading only), then applies in batches, and is
idempotent: a run stopped halfway and started again changes only what is left. Scope is the
incident's subjects, or everyone (``--everyone``: a reset for all users).

- ``sql-sessions``: delete the subjects' rows from a sessions table — they must log in again.
- ``redis-sessions``: delete session keys (``key: "session:{subject}"``) and/or the keys listed in a
  per-user set (``set: "user-sessions:{subject}"``), pipelined.
- ``sql-tokens``: set a revocation time on access and refresh tokens not yet revoked. Logging out
  does not end tokens already issued; this does.
- ``oauth-grants``: revoke third-party integration grants (voice assistants, automation services) at
  each provider's RFC 7009 endpoint, confirm by RFC 7662 introspection where offered, then mark them
  relink-required (:mod:`piiguard.response.grants`).
- ``password-reset``: set a forced-reset flag.
- ``mongodb-sessions``, ``mongodb-tokens``, ``mongodb-password-reset``, ``mongodb-grants``: the same
  on MongoDB documents (:mod:`piiguard.response.documents`).

The SQL responders speak PostgreSQL and MariaDB/MySQL through one dialect each
(:mod:`piiguard.response.dialects`: connecting, quoting, matching a batch of subjects, naming a
row); the store they name needs UPDATE/DELETE on the table. Connections come from the engine's
client module (:mod:`piiguard.engines`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from piiguard.config import options_from
from piiguard.errors import ConfigError, StoreError, UsageError
from piiguard.model import Store
from piiguard.registry import Registry
from piiguard.response import grants as oauth
from piiguard.response.dialects import DIALECTS, Dialect
from piiguard.response.grants import Provider

BATCH = 10_000
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Outcome:
    """What one responder's apply changed; for grants, how many revocations were confirmed."""

    changed: int
    grants: oauth.Tally | None = None

    def facts(self) -> dict[str, Any]:
        """For the timeline's ``responded`` entry."""
        return {"changed": self.changed, **(self.grants.facts() if self.grants else {})}

    def summary(self) -> str:
        text = f"{self.changed:,} changed"
        return f"{text}; {oauth.describe(self.grants.facts())}" if self.grants else text


class Responder(ABC):
    """One kind of door. ``Options`` is a frozen dataclass; YAML keys are checked against it."""

    Options: ClassVar[type[Any]]
    # the engines its ``store`` may be (``validate`` refuses another: a kill switch pointed at a store
    # it cannot speak to would be found in the middle of an incident)
    engines: ClassVar[tuple[str, ...]] = ("postgres", "mysql")

    def __init__(self, options: Any, stores: Mapping[str, Store], timeout: float = 30.0) -> None:
        self.options, self.stores, self.timeout = options, stores, timeout

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str) -> Any:
        return options_from(cls.Options, raw, where)

    def store(self) -> Store:
        name = self.options.store
        if name not in self.stores:
            raise UsageError(f"responder store {name!r} is not in the configuration")
        store = self.stores[name]
        if store.engine not in self.engines:
            raise UsageError(f"responder store {name!r} is {store.engine}; this responder works on "
                             f"{', '.join(self.engines)} stores")
        return store

    # False: the responder refuses everyone (``--everyone`` skips it, saying so, before anything is applied)
    everyone: ClassVar[bool] = True

    @abstractmethod
    def plan(self, subjects: Sequence[str] | None) -> str:
        """What apply would change, with a count (reads only)."""

    def total(self, subjects: Sequence[str] | None) -> int | None:
        """What apply's progress counts up to (after ``plan``): the subjects, by default."""
        return None if subjects is None else len(subjects)

    @abstractmethod
    def apply(self, subjects: Sequence[str] | None, progress: Progress) -> Outcome:
        """Change it, in batches; the outcome counts the rows, keys or grants changed."""


responders: Registry[type[Responder]] = Registry("responder", Responder)


T = TypeVar("T")


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]



class SQLResponder(Responder):
    """A statement per batch of subjects: ``WHERE subject_column IN batch AND <not done yet>``, in the
    store's dialect."""

    verb: ClassVar[str]

    @abstractmethod
    def change(self, d: Dialect, table: str, where: str) -> str:
        """The statement that changes the rows matching ``where``."""

    def pending(self, d: Dialect) -> str:
        """The condition of a row still to change (what makes a second run change nothing)."""
        return "TRUE"

    def _each(self, d: Dialect, conn: Any, subjects: Sequence[str] | None) -> Iterator[tuple[str, list[Any], int]]:
        """``(where, parameters, subjects in it)`` per batch."""
        if subjects is None:
            yield self.pending(d), [], 0
            return
        table = d.table(self.options.table)
        match = d.match(conn, table, self.options.table, self.options.subject_column)
        for batch in batches(list(subjects)):
            condition, params = match(batch)
            yield f"{condition} AND {self.pending(d)}", params, len(batch)

    def _failed(self, store: Store, exc: BaseException) -> StoreError:
        # the driver's text can quote values: keep only the class
        return StoreError(store.name, f"{self.verb} failed ({type(exc).__name__})", collection=self.options.table)

    def plan(self, subjects: Sequence[str] | None) -> str:
        store = self.store()
        d = DIALECTS[store.engine]
        table = d.table(self.options.table)
        n = 0
        try:
            with d.connect(store, self.timeout) as conn:
                for where, params, _ in self._each(d, conn, subjects):
                    rows = d.rows(conn, f"SELECT count(*) FROM {table} WHERE {where}", params)
                    n += int(rows[0][0]) if rows else 0
        except d.errors() as exc:
            raise self._failed(store, exc) from exc
        who = "everyone" if subjects is None else f"{len(subjects):,} subjects"
        return f"{self.verb} {n:,} row(s) in {store.name}.{self.options.table} ({who})"

    def apply(self, subjects: Sequence[str] | None, progress: Progress) -> Outcome:
        store = self.store()
        d = DIALECTS[store.engine]
        table = d.table(self.options.table)
        changed = 0
        try:
            with d.connect(store, self.timeout) as conn:
                for where, params, size in self._each(d, conn, subjects):
                    n = d.execute(conn, self.change(d, table, where), params)
                    changed += n
                    progress(size or n)
        except d.errors() as exc:
            raise self._failed(store, exc) from exc
        return Outcome(changed)


@dataclass(frozen=True)
class SessionsOptions:
    store: str
    table: str
    subject_column: str


@responders.register("sql-sessions")
class SQLSessions(SQLResponder):
    """Delete the subjects' sessions from a SQL table (PostgreSQL, MariaDB/MySQL): every device must log
    in again. Run again, it deletes nothing more.

    Options:
      `store` (required): the store holding the table; it needs DELETE (and SELECT) on it.
      `table` (required): `schema.table` (PostgreSQL: `public` if no schema; MariaDB: the store's database).
      `subject_column` (required): the column holding the subject id of the incident's subject file,
        compared in the column's own type.
    """

    Options = SessionsOptions
    verb = "delete sessions:"

    def change(self, d: Dialect, table: str, where: str) -> str:
        return f"DELETE FROM {table} WHERE {where}"


@dataclass(frozen=True)
class TokensOptions:
    store: str
    table: str
    subject_column: str
    revoked_column: str = "revoked_at"


@responders.register("sql-tokens")
class SQLTokens(SQLResponder):
    """Revoke the subjects' access and refresh tokens (PostgreSQL, MariaDB/MySQL): set the revocation
    time where it is empty. Logging out does not end tokens already issued; this does, provided the
    application refuses a token whose revocation time is set.

    Options:
      `store` (required): the store holding the table; it needs UPDATE (and SELECT) on it.
      `table` (required): `schema.table` of the tokens.
      `subject_column` (required): the column holding the subject id.
      `revoked_column` (default `revoked_at`): a timestamp column, NULL while the token is valid; set
        to the server's now(). Rows already revoked are left as they are.
    """

    Options = TokensOptions
    verb = "revoke tokens:"

    def pending(self, d: Dialect) -> str:
        return f"{d.quote(self.options.revoked_column)} IS NULL"

    def change(self, d: Dialect, table: str, where: str) -> str:
        return f"UPDATE {table} SET {d.quote(self.options.revoked_column)} = now() WHERE {where}"


@dataclass(frozen=True)
class ResetOptions:
    store: str
    table: str
    subject_column: str
    flag_column: str = "must_reset_password"


@responders.register("password-reset")
class PasswordReset(SQLResponder):
    """Force a password reset at the next login (PostgreSQL, MariaDB/MySQL): set the flag where it is
    not set.

    Options:
      `store` (required): the store holding the users; it needs UPDATE (and SELECT) on the table.
      `table` (required): `schema.table` of the users (or their credentials).
      `subject_column` (required): the column holding the subject id (often the primary key).
      `flag_column` (default `must_reset_password`): a boolean column (MariaDB: BOOLEAN/TINYINT) the
        application reads at login; set to true. NULL counts as not set.
    """

    Options = ResetOptions
    verb = "force password reset:"

    def pending(self, d: Dialect) -> str:
        return f"{d.quote(self.options.flag_column)} IS NOT TRUE"

    def change(self, d: Dialect, table: str, where: str) -> str:
        return f"UPDATE {table} SET {d.quote(self.options.flag_column)} = TRUE WHERE {where}"


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
    is ``FLUSHDB`` on a session database, a decision for a person, not a tool.

    Options:
      `store` (required): a redis store; its user needs UNLINK, EXISTS and SMEMBERS.
      `key` (default empty): a key pattern with `{subject}`, e.g. `session:{subject}`: one key per user.
      `set` (default empty): a key pattern with `{subject}` naming a set whose members are that user's
        session keys, e.g. `user-sessions:{subject}`; the members and the set are deleted.
      Give `key`, `set` or both.
    """

    Options = RedisSessionsOptions
    engines = ("redis",)
    everyone = False

    def _client(self) -> Any:
        from piiguard.engines import redis

        # not decoded: session keys are whatever bytes the application chose; no retry, TLS as configured
        return redis.client(self.store(), self.timeout, decode_responses=False)

    def _keys(self, client: Any, batch: Sequence[str]) -> list[str | bytes]:
        keys: list[str | bytes] = [self.options.key.format(subject=s) for s in batch] if self.options.key else []
        if self.options.set:
            sets = [self.options.set.format(subject=s) for s in batch]
            pipe = client.pipeline(transaction=False)
            for name in sets:
                pipe.smembers(name)
            # members as the bytes they are: a session key need not be UTF-8, and every one is deleted
            keys += [m for members in pipe.execute() for m in members]
            keys += sets
        return keys

    def plan(self, subjects: Sequence[str] | None) -> str:
        if subjects is None:
            raise UsageError("redis-sessions revokes the incident's subjects only, not everyone")
        with self._client() as client:
            n = 0
            for batch in batches(list(subjects)):
                keys = self._keys(client, batch)
                pipe = client.pipeline(transaction=False)
                for k in keys:
                    pipe.exists(k)
                n += sum(pipe.execute())
        return f"delete {n:,} session key(s) in {self.options.store} ({len(subjects):,} subjects)"

    def apply(self, subjects: Sequence[str] | None, progress: Progress) -> Outcome:
        if subjects is None:
            raise UsageError("redis-sessions revokes the incident's subjects only, not everyone")
        deleted = 0
        with self._client() as client:
            for batch in batches(list(subjects)):
                keys = self._keys(client, batch)
                for chunk in batches(keys, 1000):
                    deleted += int(client.unlink(*chunk)) if chunk else 0
                progress(len(batch))
        return Outcome(deleted)


GRANT_OPTIONS_DOC = """\
      `revocation_endpoint`, `client_id`, `client_secret_env`, `introspection_endpoint`,
      `token_type_hint`: the single-endpoint form — one authorization server for every grant (the
        same meanings as under `providers`). Give these or `providers`, not both.
      `providers` (default none): provider value → its authorization server, e.g.
        `{alexa: {revocation_endpoint: …, client_id: …}, google: {…}}`. Each entry takes
        `revocation_endpoint` (required; RFC 7009), `client_id` (required), `client_secret_env`
        (default empty: the environment variable holding the client secret — a reference, never the
        secret; HTTP Basic client authentication), `introspection_endpoint` (default empty; RFC 7662:
        after a revocation the token is introspected there and `active: false` confirms it; without
        one the revocation is reported as not confirmed) and `token_type_hint` (default
        `refresh_token`). A grant whose provider has no entry is counted by provider name in the plan
        and the result, and left unmarked.
      `parallel` (default 8, 1–64): calls in flight at once; each is bounded by the responder timeout.
"""


@dataclass(frozen=True)
class GrantsOptions:
    store: str
    table: str
    subject_column: str
    token_column: str
    revocation_endpoint: str = ""
    client_id: str = ""
    client_secret_env: str = ""
    introspection_endpoint: str = ""
    token_type_hint: str = "refresh_token"
    provider_column: str = ""
    providers: Mapping[str, Provider] = field(default_factory=dict)
    relink_column: str = "relink_required"
    parallel: int = 8

    def __post_init__(self) -> None:
        oauth.check_routing(self)


@responders.register("oauth-grants")
class OAuthGrants(Responder):
    __doc__ = """Revoke third-party integration grants (voice assistants, automation services) at each provider's
    authorization server (RFC 7009), confirm by introspection (RFC 7662) where the provider offers it,
    then mark each relink-required so the user is asked to link the integration again (PostgreSQL,
    MariaDB/MySQL). A grant is marked only once revoked: its server accepted the revocation (200) and,
    where the provider offers introspection, introspection answered `active: false`. A refused call, a
    redirect (never followed: the client secret goes to the configured endpoint only) or a token still
    active is left unmarked and retried on the next run, and the run ends with an error counting them.

    Options:
      `store` (required): the store holding the grants; it needs SELECT and UPDATE on the table.
      `table` (required): `schema.table` of the grants.
      `subject_column` (required): the column holding the subject id.
      `token_column` (required): the column holding the token to revoke (usually the refresh token).
      `relink_column` (default `relink_required`): a boolean column set to true once the grant is
        revoked; grants already marked are skipped (NULL counts as not marked).
      `provider_column` (default empty): the column naming each grant's provider (`alexa`, `google`,
        `ifttt`…), the key into `providers`. Required with `providers`.
""" + GRANT_OPTIONS_DOC

    Options = GrantsOptions

    def _grants(self, d: Dialect, conn: Any, subjects: Sequence[str] | None,
                key: str) -> list[tuple[Any, str, Any]]:
        o = self.options
        table = d.table(o.table)
        provider = d.quote(o.provider_column) if o.provider_column else "NULL"
        select = (f"SELECT {key}, {d.quote(o.token_column)}, {provider} FROM {table} "
                  f"WHERE {{}} AND {d.quote(o.relink_column)} IS NOT TRUE")
        if subjects is None:
            rows = d.rows(conn, select.format("TRUE"), [])
        else:
            match = d.match(conn, table, o.table, o.subject_column)
            rows = []
            for batch in batches(list(subjects)):
                condition, params = match(batch)
                rows += d.rows(conn, select.format(condition), params)
        return [(r[0], str(r[1]), r[2]) for r in rows if r[1] is not None and str(r[1])]  # no token: nothing to revoke

    def plan(self, subjects: Sequence[str] | None) -> str:
        store = self.store()
        d = DIALECTS[store.engine]
        router = oauth.Router(self.options)
        try:
            with d.connect(store, self.timeout) as conn:
                key, _ = d.row_key(conn, d.table(self.options.table), self.options.table, self.options.token_column)
                routed, unmapped = router.split(self._grants(d, conn, subjects, key))
        except d.errors() as exc:
            raise StoreError(store.name, f"reading grants failed ({type(exc).__name__})",
                             collection=self.options.table) from exc
        self.planned = len(routed)
        return plan_text(routed, unmapped, router)

    planned: int | None = None  # the grants the last plan found: apply's progress counts grants

    def total(self, subjects: Sequence[str] | None) -> int | None:
        return self.planned

    def apply(self, subjects: Sequence[str] | None, progress: Progress) -> Outcome:
        o = self.options
        store = self.store()
        d = DIALECTS[store.engine]
        table = d.table(o.table)
        try:
            with d.connect(store, self.timeout) as conn:
                key, match = d.row_key(conn, table, o.table, o.token_column)
                found = self._grants(d, conn, subjects, key)

                def mark(rows: list[Any]) -> None:
                    condition, params = match(rows)
                    d.execute(conn, f"UPDATE {table} SET {d.quote(o.relink_column)} = TRUE WHERE {condition}", params)

                tally = oauth.run(found, oauth.Router(o), o.parallel, self.timeout, store, mark, progress)
        except d.errors() as exc:
            raise StoreError(store.name, f"marking grants failed ({type(exc).__name__})", collection=o.table) from exc
        return finished(store, o.table, tally)


def plan_text(routed: Sequence[tuple[Any, str, Provider]], unmapped: Mapping[str, int], router: oauth.Router) -> str:
    """``revoke 5 integration grant(s) at …, 2 with introspection …; not revoked: 1 acme (no provider mapping)``."""
    checked = sum(1 for g in routed if g[2].introspection_endpoint)
    text = (f"revoke {len(routed):,} integration grant(s) at {router.where()} and mark them relink-required "
            f"({checked:,} to confirm by introspection)")
    if unmapped:
        text += "; not revoked, no provider mapping: " + ", ".join(f"{n:,} {p}" for p, n in sorted(unmapped.items()))
    return text


def finished(store: Store, collection: str, tally: oauth.Tally) -> Outcome:
    """The outcome, or an error when a server refused some revocations or introspection still calls some
    tokens active (those are left unmarked, to be tried again; the revoked ones stay marked). Counts and
    HTTP statuses only."""
    refused = tally.revoked.get(oauth.Revoked.REFUSED, 0)
    active = tally.revoked.get(oauth.Revoked.NOT_CONFIRMED, 0)
    if refused or active:
        total = refused + tally.accepted
        problems, retry = [], bool(active)
        if refused:
            why, retry_refused = oauth.refusal_text(tally.refusals)
            retry = retry or retry_refused
            problems.append(f"{refused:,} of {total:,} revocations were not accepted by the authorization "
                            f"server(s) ({why})")
        if active:
            unanswered = sum(tally.unanswered.values())
            why = ""
            if unanswered:
                text, retry_unanswered = oauth.refusal_text(tally.unanswered)
                retry = retry_unanswered or unanswered < active
                why = f" (introspection: {text})"
            problems.append(f"{active:,} of {total:,} grants are still active (or unconfirmed) by introspection "
                            f"after their revocation was accepted{why}: left unmarked, tried again next run")
        raise Unfinished(store.name, "; ".join(problems) + f"; {oauth.describe(tally.facts())}",
                         Outcome(tally.marked, tally), collection=collection,
                         hint=("run again: revoked grants are not repeated" if retry else
                               "running again will not help until the configuration is fixed"))
    return Outcome(tally.marked, tally)


class Unfinished(StoreError):
    """A grants run that revoked some and left others to try again: ``outcome`` is what it did (the
    timeline records it before the error is shown)."""

    def __init__(self, store: str, message: str, outcome: Outcome, *, collection: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(store, message, collection=collection, hint=hint)
        self.outcome = outcome


def select(built: Sequence[tuple[str, Responder]], only: str = "", skip: str = "") -> list[tuple[str, Responder]]:
    """The responders ``--only`` keeps and ``--skip`` leaves out, each a comma-separated list of kinds
    or of the names :func:`build` gives (``kind``, or ``kind#N`` for a kind configured more than once,
    ``N`` its index in ``respond.responders``). A name that matches nothing is an error, not a no-op."""
    names = {n for n, _ in built} | {n.partition("#")[0] for n, _ in built}

    def chosen(text: str, flag: str) -> set[str]:
        wanted = {w.strip() for w in text.split(",") if w.strip()}
        unknown = sorted(wanted - names)
        if unknown:
            raise UsageError(f"{flag}: no configured responder named {', '.join(unknown)}",
                             hint=f"configured: {', '.join(n for n, _ in built)}")
        return wanted

    keep, drop = chosen(only, "--only"), chosen(skip, "--skip")

    def hit(name: str, among: set[str]) -> bool:
        return name in among or name.partition("#")[0] in among

    out = [(n, r) for n, r in built if (not keep or hit(n, keep)) and not hit(n, drop)]
    if not out:
        raise UsageError("--only/--skip leave no responder to run")
    return out


def build(config: Mapping[str, Any], stores: Mapping[str, Store]) -> list[tuple[str, Responder]]:
    """The configured responders, in order: ``respond: responders: [{kind: …, …}]``, each named by its
    kind (``kind#N``, ``N`` its index, where a kind is configured more than once)."""
    out = []
    raws = list(config.get("responders") or [])
    kinds = [str(dict(raw).get("kind", "")) for raw in raws]
    for i, raw in enumerate(raws):
        where = f"respond.responders[{i}]"
        spec = dict(raw)
        kind = str(spec.pop("kind", ""))
        if kind not in responders:
            raise ConfigError([f"{where}.kind: unknown responder {kind!r} (known: {', '.join(responders.names())})"])
        cls = responders.get(kind)
        out.append((kind if kinds.count(kind) == 1 else f"{kind}#{i}", cls(cls.parse(spec, where), stores)))
    return out
