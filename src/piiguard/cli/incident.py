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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from piiguard import plugins, safefile
from piiguard.catalog import Catalog
from piiguard.catalog.timeline import Head
from piiguard.cli.common import open_catalog, read_config
from piiguard.config import Config
from piiguard.errors import UsageError
from piiguard.masking.pipeline import key_from
from piiguard.model import Store
from piiguard.report.terminal import safe
from piiguard.response import evidence as evidence_
from piiguard.response import incidents, notices, responders
from piiguard.response.scope import SubjectFile, find_scope, keyed, write_subjects

incident_app = typer.Typer(help="Incidents: scope, evidence, kill switch, notices, reports, timeline.",
                           no_args_is_help=True)
CATALOG = typer.Option(None, "--catalog", help="catalog file")
CONFIG = typer.Option(None, "--config", "-c")
KEY_ENV = typer.Option(None, "--key-env", help="variable holding the key (the exposed copy's key, if it is a copy)")
KEY_FILE = typer.Option(None, "--key-file", help="file holding that key")
FORCE = typer.Option(False, "--force", help="replace files already there (atomically; never through a link)")


def _head(head: Head | None) -> None:
    if head is not None:
        Console().print(f"timeline head {head}", highlight=False, soft_wrap=True)


TIMEOUT = typer.Option(30.0, "--timeout", help="seconds to wait for a store to answer (each network step)")


def _stores(config: Config | None) -> dict[str, Store]:
    return {s.name: s for s in (config.stores if config else ())}


def _folder(cat: Catalog, incident_id: int, out: Path | None, *, make: bool = True) -> Path:
    """The incident's folder (made 0700; a symbolic link there is refused, not written through)."""
    folder = out or cat.path.parent / "incidents" / str(incident_id)
    return safefile.private_dir(folder) if make else folder


def _bar(label: str) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True))


@incident_app.command("list")
def list_incidents(catalog: Path = CATALOG, config: Path = CONFIG) -> None:
    """Every incident: stores, window, what they held, status."""
    with open_catalog(catalog, read_config(config)) as cat:
        rows = cat.incidents()
    table = Table("id", "title", "window", "aware", "holds", "people", "status")
    for i in rows:
        table.add_row(str(i["id"]), safe(i["title"]), f"{i['window_start']} → {i['window_end'] or 'open'}",
                      i["aware_at"], ", ".join(i["pii_types"]), str(i["subjects_estimate"] or "-"), i["status"])
    Console().print(table)


@incident_app.command("open")
def open_incident(store: str, since: str = typer.Option(..., "--since", help="start of the exposure (ISO)"),
                  catalog: Path = CATALOG, config: Path = CONFIG) -> None:
    """Open an incident by hand (watch opens one by itself when it sees an exposure)."""
    with open_catalog(catalog, read_config(config)) as cat:
        incident_id = incidents.open_by_hand(cat, store, since)
        Console().print(f"incident {incident_id} opened")
        _head(cat.timeline_head(incident_id))


@incident_app.command("scope")
def scope(incident_id: int, out: Path = typer.Option(..., "--out", help="where the subject list goes (0600)"),
          key_env: str = KEY_ENV, key_file: Path = KEY_FILE, config: Path = CONFIG, catalog: Path = CATALOG,
          force: bool = FORCE, timeout: float = TIMEOUT) -> None:
    """Exactly who was exposed and which of their data: the list to a file (0600; an existing file only
    with --force), keyed hashes to the catalog."""
    key = key_from(key_env, str(key_file) if key_file else None)
    cfg = read_config(config)
    with open_catalog(catalog, cfg) as cat:
        incident = incidents.get(cat, incident_id)
        if not force:  # refused before the (long) read, not after it
            safefile.refuse_existing(out)
        found = find_scope(cat, incident, _stores(cfg), key, timeout=timeout)
        mac = write_subjects(found, out, force=force, key=key)
        cat.set_scope(incident_id, keyed(found, key))
        counts: dict[str, int] = {}
        for types in found.people.values():
            for t in types:
                counts[t] = counts.get(t, 0) + 1
        head = cat.event(incident_id, "scoped", {"people": len(found.people), "by_type": counts,
                                                 "read": found.sources, "derived_copies": found.derived,
                                                 "subject_file": mac})  # the list's keyed MAC, not its content
        Console().print(f"{len(found.people):,} people in scope (list: {out}); read {', '.join(found.sources)}"
                        + (f"; copies made from it: {found.derived}" if found.derived else ""))
        _head(head)


@incident_app.command("evidence")
def evidence(incident_id: int, out: Path = typer.Option(None, "--out"),
             lookback: int = typer.Option(10, "--lookback", help="minutes before the window to include (the "
                                          "exposure began between watch's last passing and first failing probe)"),
             config: Path = CONFIG, catalog: Path = CATALOG, force: bool = FORCE,
             timeout: float = TIMEOUT) -> None:
    """Who reached the exposed stores in the window, from where, and what they read; a hash per artefact
    (an artefact collected before is replaced only with --force)."""
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
            found = evidence_.collect(stores[name], start, end, folder, force, timeout=timeout)
            head = cat.event(incident_id, "evidence", found.summary())
            Console().print(safe(f"{name}: {found.note}"))
            for address, kind in sorted(found.addresses.items()):
                reads = found.reads.get(address, [])
                Console().print(safe(f"  {address}: {kind}" + (f", read {', '.join(reads)}" if reads else "")))
            if found.sha256:
                Console().print(safe(f"  {found.artefact}  sha256 {found.sha256}"))
            _head(head)


def _responders(cfg: Config | None) -> list[tuple[str, responders.Responder]]:
    plugins.load()
    chosen = responders.build(cfg.respond if cfg else {}, _stores(cfg))
    if not chosen:
        raise UsageError("no responders configured", hint="add respond: responders: to piiguard.yaml")
    return chosen


@incident_app.command("respond")
def respond(incident_id: int, subjects_file: Path = typer.Option(None, "--subjects", help="the scope's subject file"),
            everyone: bool = typer.Option(False, "--everyone", help="every user, not only the subjects"),
            apply: bool = typer.Option(False, "--apply", help="carry the plan out (otherwise only show it)"),
            key_env: str = KEY_ENV, key_file: Path = KEY_FILE, config: Path = CONFIG, catalog: Path = CATALOG) -> None:
    """The kill switch: sessions, tokens, integration grants, password resets — planned, then applied."""
    cfg = read_config(config)
    chosen = _responders(cfg)
    console = Console()
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
                task = bar.add_task(name, total=len(subjects) if subjects is not None else None)
                changed = responder.apply(subjects, lambda n, t=task: bar.advance(t, n))  # type: ignore[misc]
            head = cat.event(incident_id, "responded", {"responder": name, "changed": changed,
                                                        "scope": "everyone" if subjects is None else len(subjects)})
            console.print(f"{name}: {changed:,} changed")
            _head(head)


def _contact(cfg: Config | None) -> dict[str, str]:
    raw: Any = (cfg.respond if cfg else {}).get("contact") or {}
    return {"name": str(raw.get("name", "the data protection officer")), "email": str(raw.get("email", ""))}


@incident_app.command("notify")
def notify(incident_id: int, subjects_file: Path = typer.Option(..., "--subjects"),
           spool: Path = typer.Option(None, "--spool", help="write the messages to this folder instead of sending"),
           key_env: str = KEY_ENV, key_file: Path = KEY_FILE, config: Path = CONFIG, catalog: Path = CATALOG) -> None:
    """One notice per person: their exposed categories, what was done, what to do. Never sent twice."""
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
        with _bar("notices") as bar:
            task = bar.add_task("notices", total=people)
            sent, missing = notices.send(cat, incident, subjects, key, options, stores[options.store], _contact(cfg),
                                         spool=spool, progress=lambda n: bar.advance(task, n))
        Console().print(f"{sent:,} notice(s) {'spooled' if spool else 'sent'}; {missing:,} without an address")
        _head(cat.timeline_head(incident_id))


@incident_app.command("report")
def report(incident_id: int, out: Path = typer.Option(None, "--out"), config: Path = CONFIG,
           catalog: Path = CATALOG, force: bool = FORCE) -> None:
    """Regulator drafts (GDPR Art. 33 and 34, California) from the incident's facts (drafts written
    before are replaced only with --force)."""
    cfg = read_config(config)
    with open_catalog(catalog, cfg) as cat:
        incident = incidents.get(cat, incident_id)
        found = [json.loads(e["payload"]) for e in cat.timeline(incident_id) if e["kind"] == "evidence"]
        hashes = [f"{f['artefact']}: sha256 {f['sha256']}" for f in found if f.get("sha256")]
        hashes += [f"{f['store']}: {f['note']}" for f in found]
        hashes += [f"{f['store']}: unknown address {address} read {', '.join(reads) or 'nothing recorded'}"
                   for f in found for address, reads in f["unknown_reads"].items()]
        folder = safefile.private_dir(_folder(cat, incident_id, out) / "reports")
        drafts = notices.drafts(cat, incident, _contact(cfg), hashes, datetime.now(UTC))
        if not force:  # all drafts or none: refused before the first is written
            for name in drafts:
                safefile.refuse_existing(folder / f"{name}.md")
        for name, text in drafts.items():
            safefile.write(folder / f"{name}.md", text, force=force)
            Console().print(f"{folder / f'{name}.md'}")
        _head(cat.event(incident_id, "reported", {"drafts": sorted(f"{name}.md" for name in drafts)}))


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
        Console().print(f"timeline verified: {result.entries} entries, chain and seal intact{against}")
        _head(result.head)
        return
    where = f"timeline broken at entry {result.broken_at}" if result.broken_at else f"incident {incident_id} broken"
    Console().print(f"[red]{where}[/red]: {result.reason}", highlight=False)
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
        Console().print(f"bundle written to {out}")
        _head(head)
