"""Notices to the people affected, and the regulators' drafts.

Each person gets one e-mail (``templates/notice.txt.j2``, Jinja2) listing which categories of *their*
data were exposed, what was done, and what they should do. Sending is rate-limited and resumable:
every sent notice is recorded in the catalog under the person's keyed hash before the next batch, so
a run stopped halfway and started again sends only the rest, and nobody gets two. ``spool`` writes
the messages to files (one JSON-lines file per 10,000) for another mailer: a delivery, so each spooled
notice counts as sent. :func:`preview` renders a few to a file and counts none.

Regulator drafts (GDPR Articles 33 and 34, California) are data: ``jurisdictions.yaml`` names each
one's template, deadline and thresholds; the facts come from the incident, its scope and timeline.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from importlib import resources
from json.encoder import encode_basestring_ascii as quote  # what json.dumps does to a str
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

from piiguard import safefile
from piiguard.catalog import Catalog
from piiguard.config import options_from, resolve_password
from piiguard.connectors.postgres import JOIN, any_of
from piiguard.engines.postgres import connect
from piiguard.errors import ConfigError, StoreError, UsageError
from piiguard.model import Store
from piiguard.registry import driver
from piiguard.response.dialects import DIALECTS, Dialect
from piiguard.response.incidents import basis
from piiguard.response.scope import PREFIX, Subject, SubjectFile, prefixes

if TYPE_CHECKING:
    import jinja2
    import numpy as np
    import psycopg
    from jinja2 import sandbox
    from psycopg import sql
else:  # imported on first use: starting the CLI must not load every engine's driver
    jinja2 = driver("jinja2")
    sandbox = driver("jinja2.sandbox")
    np = driver("numpy")
    psycopg = driver("psycopg")
    sql = driver("psycopg.sql")

SPOOL_PER_FILE = 10_000

CATEGORY = {
    "email": "your e-mail address", "username": "your nickname", "person-name": "your name",
    "first-name": "your first name", "last-name": "your last name", "phone": "your phone number",
    "street-address": "your postal address", "postal-code": "your postcode", "city": "your city",
    "birth-date": "your date of birth", "ip-address": "IP addresses you connected from",
    "mac-address": "your devices' hardware addresses", "device-serial": "your devices' serial numbers",
    "wifi-ssid": "the name of your Wi-Fi network", "geo-coordinates": "your location",
    "personal-media-url": "links to your profile photo", "customer-identifier": "your customer number",
    "oauth-token": "tokens linking your account to voice assistants and other services",
    "api-key": "your API keys", "password-hash": "your password (in hashed form)",
    "credit-card": "your card number", "iban": "your bank account number", "national-id": "your ID number",
    "us-ssn": "your Social Security number", "gender": "your gender", "free-text-pii": "notes about you",
}
# what each kind of responder did, in the words a person reads (second person) and a regulator reads
# (third person); said only when the timeline shows it done (:func:`measures`)
SESSIONS = ("We logged you out of every device.", "The affected people were logged out of every device.")
TOKENS = ("We revoked every access token issued to your account.",
          "Every access token issued to the affected accounts was revoked.")
GRANTS = ("We disconnected your voice-assistant and automation integrations.",
          "The affected people's voice-assistant and automation integrations were disconnected.")
RESET = ("We will ask you to choose a new password when you next log in.",
         "The affected people will be asked to choose a new password at their next log-in.")
DONE = {
    "sql-sessions": SESSIONS, "redis-sessions": SESSIONS, "mongodb-sessions": SESSIONS,
    "sql-tokens": TOKENS, "mongodb-tokens": TOKENS,
    "oauth-grants": GRANTS, "mongodb-grants": GRANTS,
    "password-reset": RESET, "mongodb-password-reset": RESET,
}
GRANT_FACTS = ("confirmed", "no_introspection", "not_confirmed")
# the categories as a regulator reads them (GDPR Art. 33, California): of the people, not "your"
THIRD = {
    "email": "e-mail addresses", "username": "nicknames", "person-name": "names", "first-name": "first names",
    "last-name": "last names", "phone": "phone numbers", "street-address": "postal addresses",
    "postal-code": "postcodes", "city": "cities", "birth-date": "dates of birth",
    "ip-address": "IP addresses the people connected from", "mac-address": "devices' hardware addresses",
    "device-serial": "devices' serial numbers", "wifi-ssid": "Wi-Fi network names",
    "geo-coordinates": "locations", "personal-media-url": "links to profile photos",
    "customer-identifier": "customer numbers",
    "oauth-token": "tokens linking accounts to voice assistants and other services", "api-key": "API keys",
    "password-hash": "passwords (in hashed form)", "credit-card": "card numbers", "iban": "bank account numbers",
    "national-id": "ID numbers", "us-ssn": "Social Security numbers", "gender": "genders",
    "free-text-pii": "notes about the people",
}


QUALIFIER = {"pseudonym": "replaced by a pseudonym", "fake-name": "replaced by a made-up name",
             "keep-prefix": "partly", "year": "the year only", "round": "approximately",
             "ip-prefix": "the network only", "mac-vendor": "the maker's part only",
             "redact-text": "with details removed"}


def describe(label: str, *, third_person: bool = False) -> str:
    """``email (pseudonym)`` → ``your e-mail address (replaced by a pseudonym)`` (``e-mail addresses (…)``
    in the third person, for a regulator)."""
    kind, _, masker = label.partition(" (")
    phrase = (THIRD if third_person else CATEGORY).get(kind, kind)
    masker = masker.rstrip(")")
    return f"{phrase} ({QUALIFIER.get(masker, masker)})" if masker else phrase


def _environment() -> jinja2.Environment:
    """Sandboxed (an operator's own notice template, ``respond.notices.template``, renders here too):
    a template reads the variables it is given, never Python's internals."""
    return sandbox.SandboxedEnvironment(loader=jinja2.PackageLoader("piiguard.response", "templates"),
                                               undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                               autoescape=False)


# the variables a notice template is rendered with (README "Notices"): an operator's own template may use
# any of them, and no other
NOTICE_VARIABLES = ("company", "window_start", "window_end", "measures", "contact", "incident_id", "name",
                    "categories", "advice")


def notice_template(options: NoticeOptions) -> jinja2.Template:
    """The notice template: ``respond.notices.template`` (a path to the operator's own Jinja file, e.g. in
    another language) or the built-in English one. Its first line is ``Subject: …``, then a blank line,
    then the body."""
    env = _environment()
    if not options.template:
        return env.get_template("notice.txt.j2")
    path = Path(options.template).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"respond.notices.template: cannot read {path} ({type(exc).__name__})"]) from exc
    try:
        return env.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError([f"respond.notices.template: {path} line {exc.lineno}: {exc.message}"]) from exc


def jurisdictions() -> dict[str, dict[str, Any]]:
    text = resources.files("piiguard.response").joinpath("jurisdictions.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


def measures(catalog: Catalog, incident_id: int, *, third_person: bool = False) -> list[str]:
    """What was done, as far as the timeline proves it (each kind of responder once).

    Access is said closed only once the window is (with its time); sessions ended, tokens revoked and
    password resets only where a responder ran and changed something; integrations disconnected only
    where the last grants run left none unrevoked (refused, no provider mapping, or not confirmed), else
    that they are being disconnected and how many could not be yet. Second person for the notice to
    people (and Art. 34); ``third_person`` for the regulators' drafts (Art. 33, California)."""
    who = 1 if third_person else 0
    closed: str | None = None
    changed: dict[tuple[str, str], int] = {}  # the phrases, in the order first run, with changes summed
    left: dict[tuple[str, str], int] = {}  # grants: not revoked at the last run
    for e in catalog.timeline(incident_id):
        payload = json.loads(e["payload"])
        if e["kind"] == "window-closed":
            closed = str(payload.get("window_end") or e["at"])
        elif e["kind"] == "responded" and payload.get("responder") in DONE:
            phrases = DONE[payload["responder"]]
            changed[phrases] = changed.get(phrases, 0) + int(payload.get("changed", 0))
            if "refused" in payload or "unmapped" in payload:
                left[phrases] = (int(payload.get("refused", 0)) + int(payload.get("not_confirmed", 0))
                                 + sum(int(n) for n in (payload.get("unmapped") or {}).values()))
    out = [(f"Access to the exposed data was closed at {closed}." if third_person else
            f"We closed access to the exposed data at {closed}.") if closed else
           ("Access to the exposed data is not closed yet: the exposure window is still open." if third_person
            else "We are closing access to the exposed data; it is not closed yet.")]
    for phrases, n in changed.items():
        not_yet = left.get(phrases, 0)
        if not_yet:
            out.append(("The affected people's voice-assistant and automation integrations are being disconnected"
                        if third_person else "We are disconnecting your voice-assistant and automation integrations")
                       + f"; {not_yet:,} could not be yet.")
        elif n:
            out.append(phrases[who])
    return out


def revocations(catalog: Catalog, incident_id: int) -> list[str]:
    """How far the integration grants' revocations were confirmed (RFC 7662 introspection), summed over
    every grants responder run on the timeline — for the regulator drafts, not for people's notices."""
    totals = dict.fromkeys(GRANT_FACTS, 0)
    unmapped: dict[str, int] = {}
    pending: dict[str, int] = {}
    seen = False
    for e in catalog.timeline(incident_id):
        payload = json.loads(e["payload"])
        if e["kind"] != "responded" or "confirmed" not in payload:
            continue
        seen = True
        for k in GRANT_FACTS[:2]:
            totals[k] += int(payload.get(k, 0))
        # not-confirmed grants are left unmarked and tried again: the latest run's count is what is left
        pending[str(payload.get("responder", ""))] = int(payload.get("not_confirmed", 0))
        for name, n in (payload.get("unmapped") or {}).items():
            unmapped[str(name)] = max(unmapped.get(str(name), 0), int(n))  # still there on each run: not summed
    if not seen:
        return []
    totals["not_confirmed"] = sum(pending.values())
    revoked = sum(totals.values())
    unconfirmed = totals["no_introspection"] + totals["not_confirmed"]
    out = [f"Integration grants revoked at the providers' authorization servers: {revoked:,}; "
           f"{totals['confirmed']:,} confirmed revoked by the provider's introspection endpoint (RFC 7662); "
           f"{unconfirmed:,} not confirmed ({totals['no_introspection']:,} at providers without an "
           f"introspection endpoint, {totals['not_confirmed']:,} where introspection failed or reported the "
           "token still active)."]
    if unmapped:
        out.append("Integration grants not revoked, no authorization server configured for their provider: "
                   + ", ".join(f"{n:,} ({name})" for name, n in sorted(unmapped.items())) + ".")
    return out


def advice(categories: Sequence[str], done: Sequence[str]) -> list[str]:
    out = []
    if any("password" in d for d in done) or "password-hash" in categories:
        out.append("Choose a new password, and change it anywhere else you used the same one.")
    if any("integrations" in d for d in done) or "oauth-token" in categories:
        out.append("Link your voice-assistant and automation integrations again in the app.")
    if "email" in categories or "phone" in categories:
        out.append("Be wary of messages that mention this incident and ask for your password or payment.")
    if "wifi-ssid" in categories or "geo-coordinates" in categories or "street-address" in categories:
        out.append("Consider renaming your Wi-Fi network.")
    return out or ["No action is needed from you; we will tell you if that changes."]


@dataclass(frozen=True)
class NoticeOptions:
    """``respond: notices:`` — where each person's address is, and how to send."""

    store: str
    table: str
    subject_column: str
    email_column: str
    name_column: str = ""
    smtp: str = "localhost"
    port: int = 25
    starttls: bool = False
    user: str = ""
    password_env: str = ""
    cafile: str = ""
    sender: str = "privacy@localhost"
    rate: float = 20.0  # messages per second, at most
    company: str = "our company"
    template: str = ""  # the operator's own notice template (Jinja, sandboxed; NOTICE_VARIABLES)

    @classmethod
    def parse(cls, raw: Any) -> NoticeOptions:
        if not isinstance(raw, Mapping):
            raise ConfigError(["respond.notices: expected a mapping (store, table, subject_column, email_column, …)"])
        return options_from(cls, raw, "respond.notices")


_PLAIN = r"[^\s@<>,;:\"()\[\]\\]+"
_ONE_ADDRESS = re.compile(rf"{_PLAIN}@{_PLAIN}\.{_PLAIN}")


def one_address(value: object) -> bool:
    """Whether the customer data's e-mail value is exactly one plain address (``local@domain.tld``).
    The value is the customers' own data: ``a@x.de, b@evil.example`` would copy a person's notice to
    someone else, and a line break would end the headers; such a value counts as no address (the
    person is counted "without an address"; the run goes on)."""
    return isinstance(value, str) and _ONE_ADDRESS.fullmatch(value) is not None


@dataclass(frozen=True)
class Canaries:
    """Who is a planted canary, not a person: an address at ``discovery.canary.domain`` (or below it),
    or — with the discovery key — an address or subject identifier whose keyed digest is a planted
    set's. A notice to one would land in the trap and raise a false "canary used" incident."""

    domain: str | None = None
    key: bytes | None = None
    digests: frozenset[bytes] = frozenset()

    @classmethod
    def of(cls, domain: str | None, catalog: Catalog, key: bytes | None) -> Canaries:
        from piiguard.discovery.canaries import planted_sets

        digests = frozenset(d for s in planted_sets(catalog, key) for d in s.by_digest) if key else frozenset()
        return cls(domain.strip().lower().rstrip(".") if domain else None, key, digests)

    def __call__(self, subject: str, address: str) -> bool:
        at = address.rpartition("@")[2].strip().lower().rstrip(".")
        if self.domain and (at == self.domain or at.endswith("." + self.domain)):
            return True
        if self.key is None or not self.digests:
            return False
        from piiguard.discovery.canary_values import digest

        return digest(self.key, address) in self.digests or digest(self.key, subject) in self.digests


class _Contacts:
    """subject → (address, name): one read-only session for the whole run, one query per chunk.

    PostgreSQL compares the subjects in the column's own type (its index stays usable); MariaDB/MySQL
    through the responders' dialect (:mod:`piiguard.response.dialects`, ``IN (…)``)."""

    def __init__(self, options: NoticeOptions, store: Store) -> None:
        self.store, self.table, self.column = store, options.table, options.subject_column
        self.mysql: Dialect | None = None
        if store.engine == "mysql":
            self._mysql(options)
            return
        name = sql.Identifier(options.name_column) if options.name_column else sql.SQL("''")
        schema, dot, table = options.table.rpartition(".")
        relation = sql.SQL("{}.{}").format(sql.Identifier(schema if dot else "public"), sql.Identifier(table))
        self.conn = connect(store, 30, read_only=True)
        try:
            self.query, self.joined = (sql.SQL("SELECT {}::text, {}::text, {}::text FROM {} WHERE {}").format(
                sql.Identifier(options.subject_column), sql.Identifier(options.email_column), name, relation,
                any_of(self.conn, relation, options.subject_column, joined=joined)) for joined in (False, True))
        except BaseException:
            self.conn.close()
            raise

    def _mysql(self, options: NoticeOptions) -> None:
        self.mysql = dialect = DIALECTS["mysql"]
        self.conn = dialect.connect(self.store, 30)
        try:
            dialect.execute(self.conn, "SET SESSION TRANSACTION READ ONLY", [])
            relation = dialect.table(options.table)
            name = f"CAST({dialect.quote(options.name_column)} AS CHAR)" if options.name_column else "''"
            self.select = (f"SELECT CAST({dialect.quote(options.subject_column)} AS CHAR), "
                           f"CAST({dialect.quote(options.email_column)} AS CHAR), {name} FROM {relation} WHERE ")
            self.match = dialect.match(self.conn, relation, options.table, options.subject_column)
        except dialect.errors() as exc:
            self.conn.close()
            raise StoreError(self.store.name, f"cannot read addresses ({type(exc).__name__})",
                             collection=self.table) from exc
        except BaseException:
            self.conn.close()
            raise

    def __call__(self, subjects: Sequence[str]) -> dict[str, tuple[str, str]]:
        if self.mysql is not None:
            condition, params = self.match(subjects)
            try:
                found = self.mysql.rows(self.conn, self.select + condition, params)
            except self.mysql.errors() as exc:
                raise StoreError(self.store.name, f"cannot read addresses ({type(exc).__name__})",
                                 collection=self.table) from exc
            return {str(sid): (str(email), str(who or "")) for sid, email, who in found if one_address(email)}
        joined = JOIN.join(subjects)
        single = joined.count(JOIN) == len(subjects) - 1  # no identifier holds the separator
        try:
            rows = self.conn.execute(self.joined if single else self.query, [joined if single else list(subjects)],
                                     binary=True).fetchall()
        except psycopg.DataError as exc:  # a subject not of the column's type: types only, no value
            raise StoreError(self.store.name, f"cannot read addresses: respond.notices.subject_column "
                             f"{self.column!r} is {self._type()}, and the scope's subject identifiers are not "
                             f"all of that type ({type(exc).__name__})", collection=self.table,
                             hint="subject_column must be the column holding the identifiers the scope found "
                                  "people by (the customer identifier, else the e-mail address)") from exc
        except psycopg.Error as exc:
            raise StoreError(self.store.name, f"cannot read addresses ({type(exc).__name__})",
                             collection=self.table) from exc
        return {sid: (str(email), str(who or "")) for sid, email, who in rows if one_address(email)}

    def _type(self) -> str:
        schema, dot, table = self.table.rpartition(".")
        with contextlib.suppress(psycopg.Error):
            row = self.conn.execute("SELECT data_type FROM information_schema.columns WHERE table_schema = %s "
                                    "AND table_name = %s AND column_name = %s",
                                    [schema if dot else "public", table, self.column]).fetchone()
            if row is not None:
                return f"of type {row[0]}"
        return "of another type"

    def close(self) -> None:
        self.conn.close()


class _Letters:
    """The notice for each combination of exposed categories, rendered by Jinja once; each person's
    name is put in afterwards, as plain text, which is what the template does with it (no autoescape).

    That shortcut is taken only where it is proven to give exactly what rendering would: the template
    is rendered with a marker for the name and with two probe names, and the marker must lie in the
    body (after the subject line) and each probe's rendering must equal the marker replaced by the
    probe. Otherwise, or for a person without a name (the template's ``name or "customer"``), every
    notice is rendered whole. A spool line's JSON is built from pieces escaped once: JSON escapes a
    string one character at a time, so the pieces' escapes joined are the whole text's escape.
    """

    MARK = "\x00piiguard-name\x00"
    PROBES = ("Zoë \"O'Brien\" <a&b> {{ x }}\n\nSubject: \\", "Li")
    MOST = 4096  # combinations kept rendered (a handful in a real scope)

    def __init__(self, template: jinja2.Template, facts: dict[str, Any], did: Sequence[str]) -> None:
        self.template, self.facts, self.did = template, facts, did
        self.known: dict[tuple[str, ...], tuple[str, str, list[str], list[str]] | None] = {}

    def _render(self, kinds: Sequence[str], name: str) -> tuple[str, str]:
        try:
            text = self.template.render(**self.facts, name=name, categories=[describe(t) for t in kinds],
                                        advice=advice([t.split(" (")[0] for t in kinds], self.did))
        except (jinja2.UndefinedError, jinja2.exceptions.SecurityError) as exc:  # a variable's name, no value
            raise ConfigError([f"respond.notices.template: {exc.message}"],
                              hint="a notice template may use: " + ", ".join(NOTICE_VARIABLES)) from exc
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            # a template's own error ({{ 1/0 }}, a bad format): its text may hold a person's name, so the kind only
            raise ConfigError([f"respond.notices.template: cannot render ({type(exc).__name__})"]) from exc
        subject_line, _, body = text.partition("\n\n")
        return subject_line.removeprefix("Subject: "), body

    def _prepared(self, kinds: tuple[str, ...]) -> tuple[str, str, list[str], list[str]] | None:
        if kinds in self.known:
            return self.known[kinds]
        if len(self.known) >= self.MOST:
            self.known.clear()
        subject, body = self._render(kinds, self.MARK)
        pieces = body.split(self.MARK)
        ready: tuple[str, str, list[str], list[str]] | None = None
        if self.MARK not in subject and len(pieces) > 1 and all(
                self._render(kinds, p) == (subject, p.join(pieces)) for p in self.PROBES):
            ready = (subject, json.dumps(subject), pieces, [json.dumps(p)[1:-1] for p in pieces])
        self.known[kinds] = ready
        return ready

    def text(self, kinds: tuple[str, ...], name: str) -> tuple[str, str]:
        """(subject, body) for one person."""
        ready = self._prepared(kinds) if name else None
        return (ready[0], name.join(ready[2])) if ready is not None else self._render(kinds, name)

    def line(self, kinds: tuple[str, ...], to: str, name: str) -> str:
        """The spool's JSON line for one person: ``{"to": …, "subject": …, "body": …}``."""
        ready = self._prepared(kinds) if name else None
        if ready is None:
            subject, body = self._render(kinds, name)
            return json.dumps({"to": to, "subject": subject, "body": body}) + "\n"
        return "".join(('{"to": ', quote(to), ', "subject": ', ready[1], ', "body": "',
                        quote(name)[1:-1].join(ready[3]), '"}\n'))


def send(catalog: Catalog, incident: dict[str, Any], subjects: SubjectFile, key: bytes, options: NoticeOptions,
         store: Store, contact: Mapping[str, str], *, spool: Path | None = None,
         progress: Callable[[int], None] | None = None,
         canaries: Canaries | None = None) -> tuple[int, int, int]:
    """Notify every subject not notified yet; returns (notified now, without an address, canaries
    skipped: planted rows are nobody, and mail to them would set off the trap).

    The subject file is read a chunk at a time (check it whole with ``subjects.check()`` first); which
    of a chunk's people were notified already is looked up in a sorted array of the catalog's keyed
    hashes (16 bytes a person), and their addresses in one query. The cost per notice does not grow
    with the number of people.

    Over SMTP each notice is recorded *before* it is handed to the server and the record is removed if
    the server refuses it, so a process killed mid-send may lose that one notice (it is reported as
    sent) but never sends one twice. A spool is recorded per file of 10,000.
    """
    incident_id = int(incident["id"])
    done = prefixes(catalog.notified(incident_id), 32)
    letters = _letters(catalog, incident, options, contact)
    lookup = _Contacts(options, store)
    try:
        sender = _Sender(options, spool)
    except BaseException:
        lookup.close()
        raise
    sent, pending, missing, skipped = 0, bytearray(), 0, 0
    is_canary = canaries or Canaries()
    interval = 1.0 / options.rate if options.rate > 0 else 0.0
    try:
        for chunk in subjects.chunks():  # bounded memory: a chunk of people and their addresses at a time
            told = 0  # advanced one by one (over SMTP)
            todo = _not_in(done, chunk)
            addresses = lookup([s for s, _, _ in todo]) if todo else {}
            for subject, hashed, kinds in todo:
                found = addresses.get(subject)
                if found is None:
                    missing += 1
                    continue
                address, name = found
                if is_canary(subject, address):
                    skipped += 1
                    continue
                if spool is not None:
                    sender.write(letters.line(kinds, address, name))
                    pending += hashed
                    if len(pending) >= 32 * SPOOL_PER_FILE:  # a spool file's worth, recorded in one row
                        catalog.mark_notified(incident_id, bytes(pending))
                        pending.clear()
                    sent += 1
                    continue
                started = time.monotonic()
                subject_line, body = letters.text(kinds, name)
                catalog.mark_done("notices", incident_id, [hashed.hex()])
                try:
                    sender.send(address, subject_line, body)
                except BaseException:
                    catalog.unmark_notice(incident_id, hashed.hex())
                    raise
                sent += 1
                if progress is not None:
                    progress(1)
                    told += 1
                if interval:
                    time.sleep(max(0.0, interval - (time.monotonic() - started)))
            if progress is not None:
                progress(len(chunk) - told)  # the rest of the chunk: spooled, notified before, no address
    finally:
        catalog.mark_notified(incident_id, bytes(pending))
        sender.close()
        lookup.close()
        catalog.event(incident_id, "notified", {"sent": sent, "without_address": missing,
                                                "canaries_skipped": skipped, "spooled": spool is not None}
                      | ({"spool": str(spool)} if spool is not None else {}))
    return sent, missing, skipped


def _letters(catalog: Catalog, incident: dict[str, Any], options: NoticeOptions,
             contact: Mapping[str, str]) -> _Letters:
    incident_id = int(incident["id"])
    did = measures(catalog, incident_id)
    return _Letters(notice_template(options),
                    {"company": options.company, "window_start": incident["window_start"],
                     "window_end": incident["window_end"], "measures": did, "contact": contact,
                     "incident_id": incident_id}, did)


def history(catalog: Catalog, incident_id: int) -> list[str]:
    """The earlier notify runs that notified someone: ``20 spooled to DIR at T``, ``5 sent at T``."""
    out = []
    for e in catalog.timeline(incident_id):
        payload = json.loads(e["payload"])
        if e["kind"] == "notified" and int(payload.get("sent", 0)):
            how = (f"spooled to {payload.get('spool', 'a spool folder')}" if payload.get("spooled")
                   else "sent by SMTP")
            out.append(f"{int(payload['sent']):,} {how} at {e['at']}")
    return out


def preview(catalog: Catalog, incident: dict[str, Any], subjects: SubjectFile, options: NoticeOptions,
            store: Store, contact: Mapping[str, str], count: int, path: Path,
            canaries: Canaries | None = None) -> int:
    """The first ``count`` notices a ``notify`` would send now, as text, to ``path`` (created new, 0600:
    it holds names and addresses). Nothing is sent, nothing is recorded: a later ``notify`` sends them."""
    incident_id = int(incident["id"])
    done = prefixes(catalog.notified(incident_id), 32)
    letters = _letters(catalog, incident, options, contact)
    lookup = _Contacts(options, store)
    shown = 0
    try:
        with safefile.create(path) as out:
            for chunk in subjects.chunks():
                todo = _not_in(done, chunk)[:count - shown]
                addresses = lookup([s for s, _, _ in todo]) if todo else {}
                for subject, _hashed, kinds in todo:
                    found = addresses.get(subject)
                    if found is None or (canaries is not None and canaries(subject, found[0])):
                        continue
                    subject_line, body = letters.text(kinds, found[1])
                    out.write(f"To: {found[0]}\nSubject: {subject_line}\n\n{body}\n{'-' * 72}\n")
                    shown += 1
                if shown >= count:
                    break
    finally:
        lookup.close()
    return shown


def _not_in(done: np.ndarray[Any, Any], chunk: list[Subject]) -> list[Subject]:
    """The chunk's people whose keyed hash is not among ``done`` (sorted prefixes)."""
    if not len(done):
        return chunk
    found = np.frombuffer(b"".join(h[:PREFIX] for _, h, _ in chunk), dtype=done.dtype)
    hit = done[np.searchsorted(done, found).clip(0, len(done) - 1)] == found
    return [p for p, h in zip(chunk, hit.tolist(), strict=True) if not h]


class _Sender:
    """One SMTP session for the whole run (STARTTLS with a verified certificate when asked), or a spool.

    A spool file holds names and addresses: each is 0600 in a 0700 folder, created new (never through a
    link, never over a file already there — a resumed run's files take the next free numbers, so an
    earlier run's notices are kept).
    """

    def __init__(self, options: NoticeOptions, spool: Path | None) -> None:
        self.options, self.spool, self.count, self.index = options, spool, 0, 0
        self.files = contextlib.ExitStack()
        self.file: IO[Any] | None = None
        self.smtp: smtplib.SMTP | None = None
        self.domain = email.utils.parseaddr(options.sender)[1].rpartition("@")[2] or "localhost"
        if spool is not None:
            safefile.private_dir(spool)
            return
        try:
            self.smtp = smtplib.SMTP(options.smtp, options.port, timeout=30)
            if options.starttls:
                self.smtp.starttls(context=ssl.create_default_context(cafile=options.cafile or None))
            if options.user:
                self.smtp.login(options.user, resolve_password(Store("smtp", "smtp", password_env=options.password_env))
                                or "")
        except (OSError, smtplib.SMTPException) as exc:
            raise UsageError(f"cannot open an SMTP session with {options.smtp}:{options.port} ({type(exc).__name__})",
                             hint="check respond.notices.smtp, port, starttls and credentials") from exc

    def _next_file(self, spool: Path) -> IO[Any]:
        self.files.close()  # the previous file is complete: flushed, synced
        while True:
            path = spool / f"notices-{self.index:05d}.jsonl"
            self.index += 1
            if os.path.lexists(path):
                continue  # an earlier run's (or something planted): kept, never written to
            return self.files.enter_context(safefile.create(path))

    def write(self, line: str) -> None:
        """One message to the spool, already as its JSON line."""
        assert self.spool is not None
        if self.count % SPOOL_PER_FILE == 0:
            self.file = self._next_file(self.spool)
        assert self.file is not None
        self.file.write(line)
        self.count += 1

    def send(self, to: str, subject: str, body: str) -> None:
        if self.spool is not None:
            self.write(json.dumps({"to": to, "subject": subject, "body": body}) + "\n")
            return
        assert self.smtp is not None
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.options.sender, to, subject
        message["Date"] = email.utils.formatdate(usegmt=True)  # RFC 5322 §3.6: both are expected
        message["Message-ID"] = email.utils.make_msgid(domain=self.domain)
        message.set_content(body)
        self.smtp.send_message(message)
        self.count += 1

    def close(self) -> None:
        self.files.close()
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.quit()


def drafts(catalog: Catalog, incident: dict[str, Any], contact: Mapping[str, str], evidence: Sequence[str],
           now: datetime, *, include_system: bool = False) -> dict[str, str]:
    """Every jurisdiction's draft, rendered from the incident's facts (names → markdown text).

    Each draft says where its numbers come from (:func:`~piiguard.response.incidents.basis`): before a
    scope, the estimate and the scan it came from; once the scope exists, the scope's exact counts.
    System collections the scan found PII in (an audit index, :mod:`piiguard.system`) are listed on a
    line of their own and not counted; with ``include_system`` their types join the categories."""
    incident_id = int(incident["id"])
    numbers = basis(catalog, incident)
    scope = catalog.scope(incident_id) if numbers.exact else {}
    people = numbers.people
    categories = sorted({t for types in scope.values() for t in types} if numbers.exact else incident["pii_types"])
    system = {f"{store}.{collection}" if len(incident["stores"]) > 1 else collection: types
              for store in incident["stores"] for collection, types in catalog.system_pii(store).items()}
    if include_system:
        categories = sorted(set(categories) | {t for types in system.values() for t in types})
    kinds = {c.split(" (")[0] for c in categories}
    aware = datetime.fromisoformat(incident["aware_at"])
    did = measures(catalog, incident_id)
    third = {"measures": measures(catalog, incident_id, third_person=True),
             "categories": [describe(c, third_person=True) for c in categories]}
    facts = {
        "scope_limits": scope_limits(catalog, incident_id) if numbers.exact else [],
        "incident_id": incident_id, "aware_at": incident["aware_at"], "contact": contact, "measures": did,
        "categories": [describe(c) for c in categories], "evidence": list(evidence),
        "people_text": f"{people:,}" + ("" if numbers.exact else " (an estimate: see Numbers below)")
        if people is not None else "unknown (see Numbers below)",
        "records_text": records_text(catalog, incident_id) if numbers.exact else "unknown",
        "basis": numbers.kind, "basis_text": numbers.text(),
        "nature": f"{', '.join(incident['stores'])} could be reached without authentication from "
                  f"{incident['window_start']} to {incident['window_end'] or 'now (still open)'}.",
        "consequences": _consequences(sorted(kinds)), "notices_sent": catalog.count("notices", incident_id),
        "revocations": revocations(catalog, incident_id),
        "system": [f"{name} ({', '.join(types)})" for name, types in sorted(system.items())],
        "system_heading": "System collections, counted (--include-system)" if include_system else
                          "System collections, not counted (written by the engine, not customer data)",
    }
    out = {}
    env = _environment()
    for name, spec in jurisdictions().items():
        extra: dict[str, Any] = {}
        if "deadline_hours" in spec:
            deadline = aware + timedelta(hours=int(spec["deadline_hours"]))
            left = deadline - now
            extra = {"deadline": deadline.isoformat(timespec="minutes"), "days": int(spec["deadline_hours"]) // 24,
                     "clock": (f"{left.total_seconds() / 3600:.0f} hours left." if left.total_seconds() > 0
                               else "The deadline has passed: explain the delay (Art. 33(1)).")}
        if "ag_sample_threshold" in spec:
            threshold = int(spec["ag_sample_threshold"])
            extra |= {"threshold": threshold, "ag_text": "Required if more than that many are residents."
                      if people is not None and people > threshold else
                      f"Not required unless more than {threshold} residents are notified."}
        person = third if spec.get("person") == "third" else {}
        out[name] = env.get_template(spec["template"]).render(**(facts | person), **extra)
    return out


def scope_limits(catalog: Catalog, incident_id: int) -> list[str]:
    """What the latest scope's exact count leaves out (its timeline entry's limits), a sentence each."""
    scoped = [e["payload"] for e in catalog.timeline(incident_id) if e["kind"] == "scoped"]
    limits = json.loads(scoped[-1]).get("limits") or {} if scoped else {}
    out = []
    if limits.get("unidentified_records"):
        out.append(f"{limits['unidentified_records']:,} record(s) held exposed personal data but no identifier, "
                   "so the people they concern are not counted")
    if limits.get("unreadable_records"):
        out.append(f"{limits['unreadable_records']:,} record(s) could not be read (malformed), so are not counted")
    if limits.get("not_scoped"):
        out.append("not scoped, no field identifies a person: " + ", ".join(limits["not_scoped"]))
    out += list(limits.get("warnings") or [])
    return out
def records_text(catalog: Catalog, incident_id: int) -> str:
    """The records concerned, per collection, from the last ``scoped`` timeline entry (its ``records``:
    rows read per collection); "unknown" where that scope did not record them."""
    scoped = [json.loads(e["payload"]) for e in catalog.timeline(incident_id) if e["kind"] == "scoped"]
    records = scoped[-1].get("records") if scoped else None
    if not isinstance(records, Mapping) or not records:
        return "unknown (the scope did not record its records per collection: run `piiguard incident scope` again)"
    total = sum(int(n) for n in records.values())
    return f"{total:,} records (" + ", ".join(f"{int(n):,} in {name}" for name, n in records.items()) + ")"


def _consequences(categories: Sequence[str]) -> list[str]:
    out = []
    if {"email", "phone"} & set(categories):
        out.append("Targeted phishing and scam calls using the exposed contact details.")
    if {"oauth-token", "api-key"} & set(categories):
        out.append("Use of linked integrations (voice assistants, automations) until the tokens were revoked.")
    if {"wifi-ssid", "geo-coordinates", "street-address"} & set(categories):
        out.append("Locating a person's home or network.")
    if {"password-hash"} & set(categories):
        out.append("Offline guessing of passwords, and their reuse elsewhere.")
    return out or ["Loss of confidentiality of the categories above."]
