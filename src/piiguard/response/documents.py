"""The kill switch on MongoDB documents (MongoDB, and forks that speak its protocol such as FerretDB):
the same four doors as the SQL responders, as ``delete_many`` / ``update_many`` per batch of subjects.

A collection is ``database.collection`` (or ``collection``, in the store's ``database``). Subjects are
matched as the subject file has them (text) and also as the int64 their canonical integer text spells
(``0042`` only as the string) or the ObjectId their 24 hex digits spell (either case), so a ``user_id``
stored as an integer or an ObjectId is found and nothing else is. Each filter also holds the "not done yet"
condition, so a second run changes nothing.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from piiguard.errors import StoreError, UsageError
from piiguard.model import Store
from piiguard.registry import driver
from piiguard.response import exact
from piiguard.response import grants as oauth
from piiguard.response.grants import Provider
from piiguard.response.responders import (
    GRANT_OPTIONS_DOC,
    Outcome,
    Progress,
    Responder,
    batches,
    finished,
    plan_text,
    responders,
)

if TYPE_CHECKING:
    import pymongo
    import pymongo.errors as me
else:  # imported on first use: starting the CLI must not load every engine's driver
    pymongo = driver("pymongo")
    me = driver("pymongo.errors")

_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}", re.ASCII)


def spellings(subjects: Sequence[str]) -> list[Any]:
    """Each subject as text, and as the integer (canonical text of any int64: ``0042`` matches only the
    string) or ObjectId (hex in either case) it spells (:mod:`piiguard.response.exact`)."""
    from bson import ObjectId

    out: list[Any] = list(subjects)
    for s in subjects:
        number = exact.integer(s, 64)
        if number is not None:
            out.append(number)
        elif _OBJECT_ID.fullmatch(s):
            out.append(ObjectId(s.lower()))
    return out


class Documents(Responder):
    """What every document responder shares: the collection, the filters per batch, the client."""

    engines = ("mongodb",)
    verb: ClassVar[str]

    def pending(self) -> dict[str, Any]:
        """The condition of a document still to change (what makes a second run change nothing)."""
        return {}

    def _collection(self, client: pymongo.MongoClient[Any], store: Store) -> pymongo.collection.Collection[Any]:
        database, dot, name = self.options.collection.partition(".")
        if not dot:
            database, name = store.database or "", self.options.collection
        if not database:
            raise UsageError(f"responder collection {self.options.collection!r} names no database",
                             hint="write it as database.collection, or set the store's database")
        return client[database][name]

    def _filters(self, subjects: Sequence[str] | None) -> list[tuple[dict[str, Any], int]]:
        if subjects is None:
            return [(self.pending(), 0)]
        return [({self.options.subject_field: {"$in": spellings(batch)}, **self.pending()}, len(batch))
                for batch in batches(list(subjects))]

    def _client(self, store: Store) -> pymongo.MongoClient[Any]:
        from piiguard.engines import mongodb

        return mongodb.client(store, self.timeout)

    def _failed(self, store: Store, exc: BaseException) -> StoreError:
        # the server's message can quote a document: keep only the class
        return StoreError(store.name, f"{self.verb} failed ({type(exc).__name__})",
                          collection=self.options.collection)


class DocumentResponder(Documents):
    """One ``change`` per batch of subjects: ``{subject_field: {$in: batch}, <not done yet>}``."""

    @abstractmethod
    def change(self, collection: pymongo.collection.Collection[Any], where: dict[str, Any]) -> int:
        """Change the documents matching ``where``; how many changed."""

    def plan(self, subjects: Sequence[str] | None) -> str:
        store = self.store()
        try:
            with self._client(store) as client:
                collection = self._collection(client, store)
                n = sum(collection.count_documents(where) for where, _ in self._filters(subjects))
        except me.PyMongoError as exc:
            raise self._failed(store, exc) from exc
        who = "everyone" if subjects is None else f"{len(subjects):,} subjects"
        return f"{self.verb} {n:,} document(s) in {store.name}.{self.options.collection} ({who})"

    def apply(self, subjects: Sequence[str] | None, progress: Progress) -> Outcome:
        store = self.store()
        changed = 0
        try:
            with self._client(store) as client:
                collection = self._collection(client, store)
                for where, size in self._filters(subjects):
                    n = self.change(collection, where)
                    changed += n
                    progress(size or n)
        except me.PyMongoError as exc:
            raise self._failed(store, exc) from exc
        return Outcome(changed)


@dataclass(frozen=True)
class DocSessionsOptions:
    store: str
    collection: str
    subject_field: str


@responders.register("mongodb-sessions")
class DocumentSessions(DocumentResponder):
    """Delete the subjects' session documents: every device must log in again.

    Options:
      `store` (required): a mongodb store; its user needs find and remove on the collection.
      `collection` (required): `database.collection` (or `collection` in the store's database).
      `subject_field` (required): the field holding the subject id (a dotted path for a nested one).
    """

    Options = DocSessionsOptions
    verb = "delete sessions:"

    def change(self, collection: pymongo.collection.Collection[Any], where: dict[str, Any]) -> int:
        return int(collection.delete_many(where).deleted_count)


@dataclass(frozen=True)
class DocTokensOptions:
    store: str
    collection: str
    subject_field: str
    revoked_field: str = "revoked_at"


@responders.register("mongodb-tokens")
class DocumentTokens(DocumentResponder):
    """Revoke the subjects' access and refresh tokens: set the revocation time on token documents
    that have none.

    Options:
      `store` (required): a mongodb store; its user needs find and update on the collection.
      `collection` (required): `database.collection` of the token documents.
      `subject_field` (required): the field holding the subject id.
      `revoked_field` (default `revoked_at`): set to the current UTC time where it is missing or null;
        documents already revoked are left as they are.
    """

    Options = DocTokensOptions
    verb = "revoke tokens:"

    def pending(self) -> dict[str, Any]:
        return {self.options.revoked_field: None}  # missing or null

    def change(self, collection: pymongo.collection.Collection[Any], where: dict[str, Any]) -> int:
        now = datetime.now(UTC)
        return int(collection.update_many(where, {"$set": {self.options.revoked_field: now}}).modified_count)


@dataclass(frozen=True)
class DocResetOptions:
    store: str
    collection: str
    subject_field: str
    flag_field: str = "must_reset_password"


@responders.register("mongodb-password-reset")
class DocumentPasswordReset(DocumentResponder):
    """Force a password reset at the next login: set the flag on user documents where it is not true.

    Options:
      `store` (required): a mongodb store; its user needs find and update on the collection.
      `collection` (required): `database.collection` of the users.
      `subject_field` (required): the field holding the subject id (often `_id`).
      `flag_field` (default `must_reset_password`): set to true where it is missing or not true.
    """

    Options = DocResetOptions
    verb = "force password reset:"

    def pending(self) -> dict[str, Any]:
        return {self.options.flag_field: {"$ne": True}}

    def change(self, collection: pymongo.collection.Collection[Any], where: dict[str, Any]) -> int:
        return int(collection.update_many(where, {"$set": {self.options.flag_field: True}}).modified_count)


@dataclass(frozen=True)
class DocGrantsOptions:
    store: str
    collection: str
    subject_field: str
    token_field: str
    revocation_endpoint: str = ""
    client_id: str = ""
    client_secret_env: str = ""
    introspection_endpoint: str = ""
    token_type_hint: str = "refresh_token"
    provider_field: str = ""
    providers: Mapping[str, Provider] = field(default_factory=dict)
    relink_field: str = "relink_required"
    parallel: int = 8

    def __post_init__(self) -> None:
        oauth.check_routing(self)


def _get(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


@responders.register("mongodb-grants")
class DocumentGrants(Documents):
    __doc__ = """Revoke integration grants held in documents at each provider's authorization server (RFC 7009),
    confirm by introspection (RFC 7662) where offered, then mark each document relink-required. A grant
    is marked only once revoked (accepted, and `active: false` where introspection is offered), so a
    refused call, a redirect (never followed) or a token still active is retried next run.

    Options:
      `store` (required): a mongodb store; its user needs find and update on the collection.
      `collection` (required): `database.collection` of the grant documents.
      `subject_field` (required): the field holding the subject id.
      `token_field` (required): the field holding the token to revoke (a dotted path for a nested one).
      `relink_field` (default `relink_required`): set to true once the grant is revoked; documents
        where it is already true are skipped.
      `provider_field` (default empty): the field naming each grant's provider, the key into
        `providers`. Required with `providers`.
""" + GRANT_OPTIONS_DOC

    Options = DocGrantsOptions
    verb = "revoke grants:"

    def pending(self) -> dict[str, Any]:
        return {self.options.relink_field: {"$ne": True}}

    def _grants(self, collection: pymongo.collection.Collection[Any],
                subjects: Sequence[str] | None) -> list[tuple[Any, str, Any]]:
        o = self.options
        projection = {o.token_field: 1, **({o.provider_field: 1} if o.provider_field else {})}
        out = []
        for where, _ in self._filters(subjects):
            for doc in collection.find(where, projection):
                token = _get(doc, o.token_field)
                if isinstance(token, str) and token:
                    out.append((doc["_id"], token, _get(doc, o.provider_field) if o.provider_field else None))
        return out

    def plan(self, subjects: Sequence[str] | None) -> str:
        store = self.store()
        router = oauth.Router(self.options)
        try:
            with self._client(store) as client:
                routed, unmapped = router.split(self._grants(self._collection(client, store), subjects))
        except me.PyMongoError as exc:
            raise self._failed(store, exc) from exc
        self.planned = len(routed)
        return plan_text(routed, unmapped, router)

    planned: int | None = None  # the grants the last plan found: apply's progress counts grants

    def total(self, subjects: Sequence[str] | None) -> int | None:
        return self.planned

    def apply(self, subjects: Sequence[str] | None, progress: Progress) -> Outcome:
        o = self.options
        store = self.store()
        try:
            with self._client(store) as client:
                collection = self._collection(client, store)
                found = self._grants(collection, subjects)

                def mark(ids: list[Any]) -> None:
                    collection.update_many({"_id": {"$in": ids}}, {"$set": {o.relink_field: True}})

                tally = oauth.run(found, oauth.Router(o), o.parallel, self.timeout, store, mark, progress)
        except me.PyMongoError as exc:
            raise self._failed(store, exc) from exc
        return finished(store, o.collection, tally)
