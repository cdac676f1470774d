"""Notices to the people affected, and the regulators' drafts.

Each person gets one e-mail (``templates/notice.txt.j2``, Jinja2) listing which categories of *their*
data were exposed, what was done, and what they should do. Sending is rate-limited and resumable:
every sent notice is recorded in the catalog under the person's keyed hash before the next batch, so
a run stopped halfway and started again sends only the rest, and nobody gets two. ``spool`` writes
the messages to files (one JSON-lines file per 10,000) instead of sending them.

Regulator drafts (GDPR Articles 33 and 34, California) are data: ``jurisdictions.yaml`` names each
one's template, deadline and thresholds; the facts come from the incident, its scope and timeline.
"""

from __future__ import annotations

import contextlib
import json
import os
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
from piiguard.response.incidents import basis
from piiguard.response.scope import PREFIX, Subject, SubjectFile, prefixes

if TYPE_CHECKING:
    import jinja2
    import numpy as np
    import psycopg
    from psycopg import sql
else:  # imported on first use: starting the CLI must not load every engine's driver
    jinja2 = driver("jinja2")
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
DONE = {
    "sql-sessions": "We logged you out of every device.",
    "redis-sessions": "We logged you out of every device.",
    "sql-tokens": "We revoked every access token issued to your account.",
    "oauth-grants": "We disconnected your voice-assistant and automation integrations.",
    "password-reset": "We will ask you to choose a new password when you next log in.",
    "mongodb-sessions": "We logged you out of every device.",
    "mongodb-tokens": "We revoked every access token issued to your account.",
    "mongodb-grants": "We disconnected your voice-assistant and automation integrations.",
    "mongodb-password-reset": "We will ask you to choose a new password when you next log in.",
}
GRANT_FACTS = ("confirmed", "no_introspection", "not_confirmed")


QUALIFIER = {"pseudonym": "replaced by a pseudonym", "fake-name": "replaced by a made-up name",
             "keep-prefix": "partly", "year": "the year only", "round": "approximately",
             "ip-prefix": "the network only", "mac-vendor": "the maker's part only",
             "redact-text": "with details removed"}


def describe(label: str) -> str:
    """``email (pseudonym)`` → ``your e-mail address (replaced by a pseudonym)``."""
    kind, _, masker = label.partition(" (")
    phrase = CATEGORY.get(kind, kind)
    masker = masker.rstrip(")")
    return f"{phrase} ({QUALIFIER.get(masker, masker)})" if masker else phrase


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("piiguard.response", "templates"),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def jurisdictions() -> dict[str, dict[str, Any]]:
    text = resources.files("piiguard.response").joinpath("jurisdictions.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


def measures(catalog: Catalog, incident_id: int) -> list[str]:
    """What was done, from the timeline (each responder once, in the words a person reads)."""
    out: list[str] = []
    for e in catalog.timeline(incident_id):
        payload = json.loads(e["payload"])
        if e["kind"] == "responded" and payload.get("responder") in DONE:
            line = DONE[payload["responder"]]
        elif e["kind"] == "window-closed":
            line = "We closed access to the exposed data."
        else:
            continue
        if line not in out:
            out.append(line)
    return out or ["We closed access to the exposed data."]


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

    @classmethod
    def parse(cls, raw: Any) -> NoticeOptions:
        if not isinstance(raw, Mapping):
            raise ConfigError(["respond.notices: expected a mapping (store, table, subject_column, email_column, …)"])
        return options_from(cls, raw, "respond.notices")


class _Contacts:
    """subject → (address, name): one read-only session for the whole run, one query per chunk."""

    def __init__(self, options: NoticeOptions, store: Store) -> None:
        self.store, self.table = store, options.table
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

    def __call__(self, subjects: Sequence[str]) -> dict[str, tuple[str, str]]:
        joined = JOIN.join(subjects)
        single = joined.count(JOIN) == len(subjects) - 1  # no identifier holds the separator
        try:
            rows = self.conn.execute(self.joined if single else self.query, [joined if single else list(subjects)],
                                     binary=True).fetchall()
        except psycopg.Error as exc:
            raise StoreError(self.store.name, f"cannot read addresses ({type(exc).__name__})",
                             collection=self.table) from exc
        return {sid: (str(email), str(who or "")) for sid, email, who in rows if email}

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
        text = self.template.render(**self.facts, name=name, categories=[describe(t) for t in kinds],
                                    advice=advice([t.split(" (")[0] for t in kinds], self.did))
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
         progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Notify every subject not notified yet; returns (notified now, without an address).

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
    did = measures(catalog, incident_id)
    letters = _Letters(_environment().get_template("notice.txt.j2"),
                       {"company": options.company, "window_start": incident["window_start"],
                        "window_end": incident["window_end"], "measures": did, "contact": contact,
                        "incident_id": incident_id}, did)
    lookup = _Contacts(options, store)
    try:
        sender = _Sender(options, spool)
    except BaseException:
        lookup.close()
        raise
    sent, pending, missing = 0, bytearray(), 0
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
                                                "spooled": spool is not None})
    return sent, missing


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
    facts = {
        "scope_limits": scope_limits(catalog, incident_id) if numbers.exact else [],
        "incident_id": incident_id, "aware_at": incident["aware_at"], "contact": contact, "measures": did,
        "categories": [describe(c) for c in categories], "evidence": list(evidence),
        "people_text": f"{people:,}" + ("" if numbers.exact else " (an estimate: see Numbers below)")
        if people is not None else "unknown (see Numbers below)",
        "records_text": f"{people:,} records (one per person in the exposed collection)" if numbers.exact
        else "unknown",
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
        out[name] = env.get_template(spec["template"]).render(**facts, **extra)
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
