"""``piiguard incident …``: scope, evidence, kill switch, notices, reports, a verifiable timeline.

Files an incident produces (evidence, reports) go to ``incidents/ID/`` beside the catalog unless
``--out`` says otherwise; the subject list goes only where ``scope --out`` puts it. Each is 0600 in a
0700 folder, never written through a symbolic link, and an existing file is replaced (atomically)
only with ``--force``.

Every command that adds to the timeline prints its new head (``COUNT-HMAC``): record it outside the
catalog (a ticket, a chat message) and ``incident verify ID --head COUNT-HMAC`` proves later that
nothing up to it was changed or removed.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from piiguard import plugins, safefile
from piiguard.catalog import Catalog
from piiguard.catalog.timeline import Head
from piiguard.cli.common import FORMAT, Format, open_catalog, read_config
from piiguard.config import Config
from piiguard.errors import ConfigError, UsageError
from piiguard.masking.pipeline import key_from
from piiguard.model import Store
from piiguard.report import records
from piiguard.report.document import emit
from piiguard.report.terminal import new_console, safe
from piiguard.response import evidence as evidence_
from piiguard.response import incidents, notices, responders
from piiguard.response.scope import SubjectFile, find_scope, keyed, scope_lines, write_subjects

log = logging.getLogger(__name__)
incident_app = typer.Typer(help="Incidents: scope, evidence, kill switch, notices, reports, timeline.",
                           no_args_is_help=True)
CATALOG = typer.Option(None, "--catalog", help="catalog file")
CONFIG = typer.Option(None, "--config", "-c")
KEY_ENV = typer.Option(None, "--key-env", help="variable holding the key (the exposed copy's key, if it is a copy)")
KEY_FILE = typer.Option(None, "--key-file", help="file holding that key")
FORCE = typer.Option(False, "--force", help="replace files already there (atomically; never through a link)")
INCLUDE_SYSTEM = typer.Option(False, "--include-system", help="count system collections too (an audit index, "
                              "mysql.*, admin/local/config …): left out by default, they are not the customers' data")


def _head(head: Head | None) -> None:
    if head is not None:
        new_console().print(f"timeline head {head}", highlight=False, soft_wrap=True)


TIMEOUT = typer.Option(30.0, "--timeout", help="seconds to wait for a store to answer (each network step)")


def _stores(config: Config | None) -> dict[str, Store]:
    return {s.name: s for s in (config.stores if config else ())}


def _folder(cat: Catalog, incident_id: int, out: Path | None, *, make: bool = True) -> Path:
    """The incident's folder (made 0700; a symbolic link there is refused, not written through)."""
    folder = out or cat.path.parent / "incidents" / str(incident_id)
    return safefile.private_dir(folder) if make else folder


def _bar(label: str) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=new_console(stderr=True))


@incident_app.command("list")
def list_incidents(catalog: Path = CATALOG, config: Path = CONFIG, fmt: Format = FORMAT) -> None:
    """Every incident: stores, window, what they held, how many people (exact once scoped), status."""
    with open_catalog(catalog, read_config(config)) as cat:
        rows = [records.incident(i, cat.scope_size(int(i["id"])) if incidents.scoped_at(cat, int(i["id"])) else None)
                for i in cat.incidents()]
    if fmt is Format.json:
        emit("incidents", {"incidents": rows})
        return
    table = Table("id", "title", "window", "aware", "holds", "people", "status")
    for i in rows:
        people = f"{i['people_in_scope']:,} (scope)" if i["people_in_scope"] is not None else \
            f"~{i['subjects_estimate']:,} (estimate)" if i["subjects_estimate"] is not None else "-"
        table.add_row(str(i["id"]), safe(i["title"]), safe(f"{i['window_start']} → {i['window_end'] or 'open'}"),
                      safe(i["aware_at"]), safe(", ".join(i["pii_types"])), people, safe(i["status"]))
    new_console().print(table)


@incident_app.command("show")
def show(incident_id: int, catalog: Path = CATALOG, config: Path = CONFIG, fmt: Format = FORMAT) -> None:
    """One incident whole: window, stores, PII types, where its numbers come from, the scope's counts,
    the steps done and the timeline's head."""
    with open_catalog(catalog, read_config(config)) as cat:
        row = incidents.get(cat, incident_id)
        whole = records.incident_whole(cat, row, incidents.basis(cat, row))
    if fmt is Format.json:
        emit("incident", {"incident": whole})
        return
    out = new_console(highlight=False)
    out.print(safe(f"incident {whole['id']}: {whole['title']} ({whole['status']})"), style="bold")
    for label, value in (("stores", ", ".join(whole["stores"])),
                         ("window", f"{whole['window_start']} → {whole['window_end'] or 'open'}"),
                         ("aware", whole["aware_at"]), ("holds", ", ".join(whole["pii_types"]) or "-"),
                         ("numbers", whole["numbers"]["text"])):
        out.print(safe(f"  {label}: {value}"))
    if whole["scope"] is not None:
        by_type = ", ".join(f"{t} {n:,}" for t, n in sorted(whole["scope"]["by_type"].items()))
        out.print(safe(f"  scope: {whole['scope']['people']:,} people; {by_type or 'no PII types'}"))
    for step in whole["steps"]:
        out.print(safe(f"  step {step['seq']} {step['at']} {step['kind']}: {_step_text(step['details'])}"))
    timeline = whole["timeline"]
    out.print(safe(f"  timeline: {timeline['entries']} entries"))
    if timeline["head"]:
        out.print(f"timeline head {timeline['head']}", soft_wrap=True)


def _step_text(details: dict[str, Any]) -> str:
    """A timeline payload in one line: its scalar facts, lists by their length."""
    return ", ".join(f"{k} {len(v)}" if isinstance(v, dict | list) else f"{k} {v}"
                     for k, v in details.items() if v is not None)


@incident_app.command("open")
def open_incident(store: str, since: str = typer.Option(..., "--since", help="start of the exposure (ISO)"),
                  catalog: Path = CATALOG, config: Path = CONFIG, include_system: bool = INCLUDE_SYSTEM) -> None:
    """Open an incident by hand (watch opens one by itself when it sees an exposure)."""
    with open_catalog(catalog, read_config(config)) as cat:
        incident_id = incidents.open_by_hand(cat, store, since, include_system=include_system)
        new_console().print(f"incident {incident_id} opened")
        _head(cat.timeline_head(incident_id))


@incident_app.command("scope")
def scope(incident_id: int, out: Path = typer.Option(..., "--out", help="where the subject list goes (0600)"),
          key_env: str = KEY_ENV, key_file: Path = KEY_FILE, config: Path = CONFIG, catalog: Path = CATALOG,
          force: bool = FORCE, timeout: float = TIMEOUT, fmt: Format = FORMAT,
          include_system: bool = INCLUDE_SYSTEM) -> None:
    """Exactly who was exposed and which of their data: the list to a file (0600; an existing file only
    with --force), keyed hashes to the catalog; the counts by type on stdout. System collections are not
    read unless --include-system."""
    key = key_from(key_env, str(key_file) if key_file else None)
    cfg = read_config(config)
    with open_catalog(catalog, cfg) as cat:
        incident = incidents.get(cat, incident_id)
        if not force:  # refused before the (long) read, not after it
            safefile.refuse_existing(out)
        found = find_scope(cat, incident, _stores(cfg), key, timeout=timeout, include_system=include_system,
                           subjects=(cfg.respond if cfg else {}).get("scope") or {},
                           canary_key=_discovery_key(cfg))
        mac = write_subjects(found, out, force=force, key=key)
        cat.set_scope(incident_id, keyed(found, key))
        counts: dict[str, int] = {}
        for types in found.people.values():
            for t in types:
                counts[t] = counts.get(t, 0) + 1
        head = cat.event(incident_id, "scoped", {"people": len(found.people), "by_type": counts,
                                                 "read": found.sources, "derived_copies": found.derived,
                                                 "limits": found.limits(), "records": found.records,
                                                 "subject_file": mac,  # the list's keyed MAC, not its content
                                                 "copy_of": found.copy_of})
        if fmt is Format.json:
            emit("scope", {"incident": incident_id, "people": len(found.people),
                           "by_type": dict(sorted(counts.items())), "read": list(found.sources),
                           "derived_copies": list(found.derived), "copy_of": list(found.copy_of), **found.limits(),
                           "not_counted": {} if include_system else {s: cat.system_pii(s) for s in incident["stores"]},
                           "subjects_file": str(out), "timeline_head": str(head) if head else None})
            return
        new_console().print(safe(f"{len(found.people):,} people in scope (list: {out}); read {', '.join(found.sources)}"
                             + (f"; copies made from it: {found.derived}" if found.derived else "")))
        for line in scope_lines(found):
            new_console().print(safe(line))
        if not include_system:
            _not_counted(cat, incident)
        _head(head)


@incident_app.command("evidence")
def evidence(incident_id: int, out: Path = typer.Option(None, "--out"),
             lookback: int = typer.Option(10, "--lookback", help="minutes before the window to include (the "
                                          "exposure began between watch's last passing and first failing probe)"),
             config: Path = CONFIG, catalog: Path = CATALOG, force: bool = FORCE,
             timeout: float = TIMEOUT, fmt: Format = FORMAT,
             include_own: bool = typer.Option(False, "--include-own", help="list piiguard's own entries too (its "
                                              "user from its address; left out and counted by default)")) -> None:
    """Who reached the exposed stores in the window, from where, and what they read; a hash per artefact
    (an artefact collected before is replaced only with --force). Entries of piiguard's own user from
    piiguard's own address are left out and counted (anyone using its credentials from its host would be
    too): --include-own lists them."""
    cfg = read_config(config)
    stores = _stores(cfg)
    with open_catalog(catalog, cfg) as cat:
        incident = incidents.get(cat, incident_id)
        folder = _folder(cat, incident_id, out) / "evidence"
        start = datetime.fromisoformat(incident["window_start"]) - timedelta(minutes=lookback)
        # the catalog keeps whole seconds: the window's last second is included whole
        end = datetime.fromisoformat(incident["window_end"]) + timedelta(seconds=1) if incident["window_end"] else None
        for name in incident["stores"]:
            if name not in stores:
                raise UsageError(f"store {name!r} is not in the configuration")
        collected: list[dict[str, Any]] = []
        head: Head | None = None
        for name in incident["stores"]:
            found = evidence_.collect(stores[name], start, end, folder, force, timeout=timeout,
                                      include_own=include_own)
            head = cat.event(incident_id, "evidence", found.summary())
            if fmt is Format.json:
                collected.append({"store": name, "trail": found.trail, "note": found.note,
                                  "artefact": str(folder / found.artefact) if found.artefact else None,
                                  "sha256": found.sha256,
                                  "addresses": [{"address": a, "class": k, "read": list(found.reads.get(a, []))}
                                                for a, k in sorted(found.addresses.items())]})
                continue
            new_console().print(safe(f"{name}: {found.note}"))
            for address, kind in sorted(found.addresses.items()):
                reads = found.reads.get(address, [])
                new_console().print(safe(f"  {address}: {kind}" + (f", read {', '.join(reads)}" if reads else "")))
            if found.sha256:
                new_console().print(safe(f"  {found.artefact}  sha256 {found.sha256}"))
            _head(head)
        if fmt is Format.json:
            emit("evidence", {"incident": incident_id, "from": start.isoformat(),
                              "to": end.isoformat() if end else None, "lookback_minutes": lookback, "stores": collected,
                              "timeline_head": str(head) if head else None})


def _responders(cfg: Config | None, only: str = "", skip: str = "") -> list[tuple[str, responders.Responder]]:
    """The configured responders, named as the plan shows them, less those ``--only``/``--skip`` leave out."""
    plugins.load()
    built = responders.build(cfg.respond if cfg else {}, _stores(cfg))
    if not built:
        raise UsageError("no responders configured", hint="add respond: responders: to piiguard.yaml")
    return responders.select(built, only, skip)


@incident_app.command("respond")
def respond(incident_id: int, subjects_file: Path = typer.Option(None, "--subjects", help="the scope's subject file"),
            everyone: bool = typer.Option(False, "--everyone", help="every user, not only the subjects"),
            apply: bool = typer.Option(False, "--apply", help="carry the plan out (otherwise only show it)"),
            only: str = typer.Option("", "--only", help="run only these responders: KIND[,KIND] or the names "
                                     "the plan shows (kind#N for a kind configured twice)"),
            skip: str = typer.Option("", "--skip", help="run all but these responders (same names as --only)"),
            key_env: str = KEY_ENV, key_file: Path = KEY_FILE, config: Path = CONFIG, catalog: Path = CATALOG) -> None:
    """The kill switch: sessions, tokens, integration grants, password resets — planned, then applied.
    With --everyone, a responder that cannot act on everyone (redis-sessions) is skipped, saying so."""
    cfg = read_config(config)
    chosen = _responders(cfg, only, skip)
    console = new_console()
    if everyone:
        for name, responder in chosen:
            if not responder.everyone:
                console.print(safe(f"{name}: skipped: it cannot act on everyone (--everyone); "
                                   f"run it with --subjects, or leave it out with --skip {name}"))
        chosen = [(name, r) for name, r in chosen if r.everyone]
        if not chosen:
            raise UsageError("none of the chosen responders can act on everyone", hint="give --subjects FILE")
    with open_catalog(catalog, cfg) as cat:
        incidents.get(cat, incident_id)
        subjects: list[str] | None = None
        if not everyone:
            if subjects_file is None:
                raise UsageError("give --subjects FILE (from incident scope) or --everyone")
            key = key_from(key_env, str(key_file) if key_file else None)
            subjects = SubjectFile(subjects_file, cat, incident_id, key).ids()
        for name, responder in chosen:
            console.print(safe(f"{name}: {responder.plan(subjects)}"))
        if not apply:
            console.print("nothing changed; run again with --apply")
            return
        for name, responder in chosen:
            with _bar(name) as bar:
                task = bar.add_task(name, total=responder.total(subjects))
                try:
                    outcome = responder.apply(subjects, lambda n, t=task: bar.advance(t, n))  # type: ignore[misc]
                except responders.Unfinished as exc:  # what it did is on the timeline before the error
                    cat.event(incident_id, "responded", {"responder": name, **exc.outcome.facts(), "unfinished": True,
                                                         "scope": "everyone" if subjects is None else len(subjects)})
                    raise
            if isinstance(outcome, int):  # a third-party responder written before Outcome returns a count
                outcome = responders.Outcome(outcome)
            head = cat.event(incident_id, "responded", {"responder": name, **outcome.facts(),
                                                        "scope": "everyone" if subjects is None else len(subjects)})
            console.print(safe(f"{name}: {outcome.summary()}"))
            _head(head)


def _contact(cfg: Config | None) -> dict[str, str]:
    raw: Any = (cfg.respond if cfg else {}).get("contact") or {}
    return {"name": str(raw.get("name", "the data protection officer")), "email": str(raw.get("email", ""))}


def _discovery_key(cfg: Config | None) -> bytes | None:
    """The discovery key, to tell planted canaries from people; None (logged) when it is not configured."""
    from piiguard.discovery.keys import load_key

    if cfg is None or not (cfg.discovery.key_env or cfg.discovery.key_file):
        return None
    try:
        return load_key(cfg.discovery)
    except ConfigError as exc:
        log.warning("planted canaries cannot be told by their values: %s", exc)
        return None


def _canaries(cfg: Config | None, cat: Catalog) -> notices.Canaries:
    """Who notices must not reach: the canary domain, and with the discovery key the planted values (a
    missing key leaves the domain alone to go by)."""
    if cfg is None:
        return notices.Canaries()
    return notices.Canaries.of(cfg.discovery.canary.domain, cat, _discovery_key(cfg))


@incident_app.command("notify")
def notify(incident_id: int, subjects_file: Path = typer.Option(..., "--subjects"),
           spool: Path = typer.Option(None, "--spool", help="deliver the messages as files in this folder, for "
                                      "another mailer: they count as sent, and a later notify will not send them"),
           preview: int = typer.Option(0, "--preview", min=0, help="write the first N notices to a 0600 file "
                                       "and send nothing, record nothing"),
           key_env: str = KEY_ENV, key_file: Path = KEY_FILE, config: Path = CONFIG, catalog: Path = CATALOG) -> None:
    """One notice per person: their exposed categories, what was done, what to do. Never sent twice.

    ``--spool DIR`` is a delivery (to your own mailer), not a preview: every spooled notice counts as
    sent. ``--preview N`` shows the first N notices without sending or recording any."""
    cfg = read_config(config)
    options = notices.NoticeOptions.parse((cfg.respond if cfg else {}).get("notices"))
    stores = _stores(cfg)
    if options.store not in stores:
        raise UsageError(f"respond.notices.store {options.store!r} is not in the configuration")
    key = key_from(key_env, str(key_file) if key_file else None)
    with open_catalog(catalog, cfg) as cat:
        incident = incidents.get(cat, incident_id)
        subjects = SubjectFile(subjects_file, cat, incident_id, key)
        people = subjects.check()  # the whole file, before anyone is notified
        console = new_console()
        if preview:
            if spool is not None:
                raise UsageError("give --preview or --spool, not both")
            folder = _folder(cat, incident_id, None)
            path = next(p for i in range(100_000) if not os.path.lexists(p := folder / f"notices-preview-{i:03d}.txt"))
            shown = notices.preview(cat, incident, subjects, options, stores[options.store], _contact(cfg), preview,
                                    path, canaries=_canaries(cfg, cat))
            console.print(safe(f"{shown:,} notice(s) previewed in {path} (0600); nothing sent, nothing recorded"))
            return
        earlier = notices.history(cat, incident_id)
        with _bar("notices") as bar:
            task = bar.add_task("notices", total=people)
            sent, missing, skipped = notices.send(cat, incident, subjects, key, options, stores[options.store],
                                                  _contact(cfg), spool=spool, progress=lambda n: bar.advance(task, n),
                                                  canaries=_canaries(cfg, cat))
        already = people - sent - missing - skipped
        if spool is not None:
            console.print(safe(f"{sent:,} notice(s) spooled to {spool} and recorded as SENT: deliver them with your "
                               "own mailer; a later notify will not send them again (--preview N only looks)"))
        else:
            console.print(f"{sent:,} notice(s) sent")
        if already and not sent and earlier:
            console.print(safe(f"all {already:,} already notified: {'; '.join(earlier)}"))
        elif already and earlier:
            console.print(safe(f"{already:,} already notified before: {'; '.join(earlier)}"))
        console.print(f"{missing:,} without an address")
        if skipped:
            console.print(f"{skipped:,} skipped: planted canaries (an address at discovery.canary.domain or a "
                          "canary value), not people; a notice would set off the trap")
        _head(cat.timeline_head(incident_id))


@incident_app.command("report")
def report(incident_id: int, out: Path = typer.Option(None, "--out"), config: Path = CONFIG,
           catalog: Path = CATALOG, force: bool = FORCE, fmt: Format = FORMAT,
           include_system: bool = INCLUDE_SYSTEM) -> None:
    """Regulator drafts (GDPR Art. 33 and 34, California) from the incident's facts (drafts written
    before are replaced only with --force). Each says whether its numbers are the scope's (exact) or
    a scan's estimate, and which scan. System collections the scan found PII in are listed on a line of
    their own, not counted (--include-system counts them)."""
    cfg = read_config(config)
    with open_catalog(catalog, cfg) as cat:
        incident = incidents.get(cat, incident_id)
        found = [json.loads(e["payload"]) for e in cat.timeline(incident_id) if e["kind"] == "evidence"]
        hashes = [f"{f['artefact']}: sha256 {f['sha256']}" for f in found if f.get("sha256")]
        hashes += [f"{f['store']}: {f['note']}" for f in found]
        hashes += [f"{f['store']}: unknown address {address} read {', '.join(reads) or 'nothing recorded'}"
                   for f in found for address, reads in f["unknown_reads"].items()]
        hashes += [f"{f['store']}: {f['own_entries']} entries were attributed to piiguard itself "
                   f"({f.get('own_identity') or 'its user from its address'}) and left out; they are in the "
                   "artefact, and `incident evidence --include-own` lists them"
                   for f in found if f.get("own_entries") and not f.get("own_included")]
        folder = safefile.private_dir(_folder(cat, incident_id, out) / "reports")
        drafts = notices.drafts(cat, incident, _contact(cfg), hashes, datetime.now(UTC),
                                include_system=include_system)
        if not force:  # all drafts or none: refused before the first is written
            for name in drafts:
                safefile.refuse_existing(folder / f"{name}.md")
        numbers = incidents.basis(cat, incident)
        for name, text in drafts.items():
            safefile.write(folder / f"{name}.md", text, force=force)
        head = cat.event(incident_id, "reported", {"drafts": sorted(f"{name}.md" for name in drafts),
                                                   "basis": numbers.kind})
        if fmt is Format.json:
            emit("report", {"incident": incident_id, "numbers": numbers.to_dict(),
                            "drafts": [{"name": name, "path": str(folder / f"{name}.md")} for name in drafts],
                            "timeline_head": str(head) if head else None})
            return
        console = new_console(highlight=False)
        console.print(safe(f"numbers: {numbers.text()}"), soft_wrap=True)
        for name in drafts:
            console.print(safe(str(folder / f"{name}.md")), soft_wrap=True)
        _head(head)


def _not_counted(cat: Catalog, incident: dict[str, Any]) -> None:
    """System collections the scan found PII in, named so an operator sees what was left out."""
    for store in incident["stores"]:
        held = cat.system_pii(store)
        if held:
            listed = "; ".join(f"{c} ({', '.join(t)})" for c, t in sorted(held.items()))
            new_console().print(safe(f"{store}: system collections, not counted: {listed} (--include-system counts "
                                 "them)"))


@incident_app.command("verify")
def verify(incident_id: int, catalog: Path = CATALOG, config: Path = CONFIG,
           head: str = typer.Option(None, "--head", help="a head recorded earlier (COUNT-HMAC): the timeline must "
                                    "still hold it")) -> None:
    """Check the timeline's keyed chain and seal: any edited, removed (the last ones too) or reordered
    entry, or a chain rewritten without the timeline key, is found (exit 1). With --head, a rewrite with
    the key, or a catalog put back from an older copy, is found too."""
    recorded = Head.parse(head) if head else None
    with open_catalog(catalog, read_config(config)) as cat:
        result = incidents.verify(cat, incident_id, recorded)
    if result.ok:
        against = f", holds the recorded head ({recorded.entries} entries)" if recorded else ""
        new_console().print(f"timeline verified: {result.entries} entries, chain and seal intact{against}")
        _head(result.head)
        return
    where = f"timeline broken at entry {result.broken_at}" if result.broken_at else f"incident {incident_id} broken"
    new_console().print(f"[red]{where}[/red]: {result.reason}", highlight=False)
    raise typer.Exit(1)


@incident_app.command("export")
def export(incident_id: int, out: Path, catalog: Path = CATALOG, config: Path = CONFIG,
           force: bool = FORCE) -> None:
    """Write the bundle: incident, timeline and its head, evidence and reports, with SHA256SUMS (0600
    files in a 0700 folder; a bundle already there is replaced only with --force)."""
    with open_catalog(catalog, read_config(config)) as cat:
        folder = _folder(cat, incident_id, None, make=False)
        files = {f"{p.parent.name}-{p.name}": p for p in sorted(folder.rglob("*"))
                 if p.is_file() and not p.is_symlink()} if folder.exists() else {}
        head = incidents.export(cat, incident_id, out, files, force=force)
        new_console().print(f"bundle written to {out}")
        _head(head)
