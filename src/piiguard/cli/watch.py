"""``piiguard watch`` and ``piiguard exposures``."""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from piiguard import plugins
from piiguard.cli.common import CATALOG_HELP, FORMAT, Format, open_catalog, read_config
from piiguard.config import check_alert_flags
from piiguard.contain.service import Containor
from piiguard.discovery.base import Problem
from piiguard.discovery.keys import load_key
from piiguard.errors import ConfigError, DeliveryFailed, PiiguardError, UsageError
from piiguard.policy import Policy
from piiguard.report import records
from piiguard.report.document import emit
from piiguard.report.terminal import new_console, safe
from piiguard.response.incidents import follow_exposures
from piiguard.scanner import resolve_stores
from piiguard.watch.metrics import Metrics, serve
from piiguard.watch.service import DEFAULT_INSIDE_EVERY, DEFAULT_INTERVAL, DEFAULT_RESCAN_EVERY, Watcher
from piiguard.watch.sinks import AlertSink, JsonLines, from_config

log = logging.getLogger(__name__)


class Undecided(PiiguardError):
    """``watch --once`` ran, but some checks could not be decided (exit 1, as for ``check``)."""


class SweepProblems(PiiguardError):
    """``watch --once`` swept, but some addresses could not be read or compared (exit 1, as for
    ``discover``)."""


def verdict(problems: Sequence[Problem], failed_deliveries: int, undecided: int) -> None:
    """How ``watch --once`` ends: exit 2 for an unusable discovery key (plain watch refuses it too),
    1 when an alert was not delivered, a check not decided, or the sweep met a problem; else 0."""
    settings = [p for p in problems if p.setting]
    if settings:  # a key watch cannot use: a configuration error, as it is for plain watch (exit 2)
        raise ConfigError([f"{p.where}: {p.message}" for p in settings], hint=settings[0].hint or None)
    if failed_deliveries:  # a watch that could not tell anyone must not look clean
        raise DeliveryFailed(f"{failed_deliveries} alert delivery(ies) failed; they stay queued",
                             hint="check the sinks (see the log lines above); the next watch retries them")
    if undecided:  # like check: a store that could not be asked is no all-clear
        raise Undecided(f"{undecided} check(s) could not be decided",
                        hint="is the store reachable with these credentials? `piiguard check` shows why")
    if problems:  # an address the sweep could not read or compare: not an all-clear either
        raise SweepProblems(f"the discovery sweep met {len(problems)} problem(s)",
                            hint="each is logged above with its address and a hint")


def watch(
    targets: list[str] = typer.Argument(None, help="store names from the config, or URLs (as for check)"),
    config: Path = typer.Option(None, "--config", "-c", help="configuration file (default ./piiguard.yaml if present)"),
    once: bool = typer.Option(False, "--once", help="run one full cycle, deliver its alerts, and exit"),
    interval: float = typer.Option(DEFAULT_INTERVAL, "--interval", help="seconds between outside probes"),
    inside_every: float = typer.Option(DEFAULT_INSIDE_EVERY, "--inside-every", help="seconds between inside audits"),
    rescan_every: float = typer.Option(DEFAULT_RESCAN_EVERY, "--rescan-every",
                                       help="seconds between sampled re-scans of what the stores hold"),
    webhook: list[str] = typer.Option(None, "--webhook", help="POST each alert as JSON to this URL (repeatable)"),
    slack: bool = typer.Option(False, "--slack", help="webhook payloads in Slack's {\"text\": …} form"),
    stdout: bool = typer.Option(False, "--stdout", help="also print each alert as a JSON line"),
    smtp: str = typer.Option(None, "--smtp", help="send each alert by e-mail through this server (host:port)"),
    smtp_to: list[str] = typer.Option(None, "--smtp-to", help="e-mail recipient (repeatable)"),
    smtp_from: str = typer.Option("piiguard@localhost", "--smtp-from", help="e-mail sender"),
    smtp_starttls: bool = typer.Option(False, "--smtp-starttls", help="upgrade the SMTP connection with STARTTLS"),
    smtp_smtps: bool = typer.Option(False, "--smtps", help="SMTP over TLS from the first byte (port 465)"),
    smtp_user: str = typer.Option(None, "--smtp-user", help="SMTP login (sent only over STARTTLS or --smtps)"),
    smtp_password_env: str = typer.Option(None, "--smtp-password-env", help="environment variable with the password"),
    syslog: str = typer.Option(None, "--syslog", help="RFC 5424 syslog: udp://host:514 or tcp://host:601"),
    metrics_port: int = typer.Option(None, "--metrics-port", help="serve /metrics and /healthz on this port"),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="address for --metrics-port"),
    catalog: Path = typer.Option(None, "--catalog", help=CATALOG_HELP),
    timeout: float = typer.Option(5.0, "--timeout", help="seconds to wait for each network step"),
) -> None:
    """Re-check stores continuously; alert when a protection is removed or restored; record exposure windows.
    With discovery.every set, also sweep the allowed networks on that schedule and alert on new stores."""
    cfg = read_config(config)
    plugins.load()
    sweeping = cfg is not None and cfg.discovery.every is not None
    # a watch that only sweeps (discovery.every, no stores listed yet) is a watch too
    stores = [] if sweeping and not targets and cfg is not None and not cfg.stores else \
        resolve_stores(targets or [], cfg)
    flags: list[tuple[str, dict[str, Any]]] = [("--webhook", {"kind": "webhook", "webhook": url, "slack": slack})
                                               for url in webhook or []]
    if smtp:  # the flags become the same mappings as alerts: in piiguard.yaml, checked and built by the same code
        host, _, port = smtp.rpartition(":")
        if not host or not smtp_to:
            raise UsageError("--smtp takes host:port and needs at least one --smtp-to")
        flags.append(("--smtp", {"kind": "smtp", "smtp": host, "port": int(port) if port.isdigit() else port,
                                 "to": smtp_to, "from": smtp_from, "starttls": smtp_starttls, "smtps": smtp_smtps,
                                 "user": smtp_user, "password_env": smtp_password_env}))
    if syslog:
        flags.append(("--syslog", {"kind": "syslog", "syslog": syslog}))
    check_alert_flags(flags)
    sinks: list[AlertSink] = from_config([*(cfg.alerts if cfg else ()), *(f for _, f in flags)],
                                              timeout=timeout)
    if stdout or not sinks:
        sinks.append(JsonLines())
    with open_catalog(catalog, cfg) as cat:
        metrics = Metrics(interval)
        policy = cfg.policy if cfg else Policy()
        containor = Containor(cat, mode=policy.containment, rate=policy.containment_rate, timeout=timeout)
        watcher = Watcher(stores, cat, sinks, config=cfg, timeout=timeout, metrics=metrics, containor=containor)
        if metrics_port is not None and not once:
            serve(metrics, metrics_host, metrics_port)
        log.info("watching %d store(s) every %s s; %d alert sink(s); containment %s", len(stores), interval,
                 len(sinks), policy.containment, extra={"stores": len(stores), "containment": policy.containment})
        if once:
            if cfg is not None and cfg.discovery.canary.trap:  # as watch refuses to start without the trap's key
                load_key(cfg.discovery)
                from piiguard.discovery.trap import check_listen  # loaded only when a trap is configured

                check_listen(cfg.discovery.canary)  # nor with an address it cannot listen on (exit 2)
            watcher.cycle(inside=True)
            if watcher.rescan_due.is_set():  # a field appeared or was retyped: classified in this run
                watcher.rescan()
            problems: tuple[Problem, ...] = ()
            if sweeping:  # one sweep too: --once is one of everything watch does
                sweeper = watcher.discovery()
                sweeper.once(cat)
                problems = sweeper.problems
                follow_exposures(cat)  # a found store's window that names PII: its incident now, not next run
            watcher.deliver(overdue_too=True)  # each --once run is a retry: nothing waits for a backoff
            log.info("one cycle done", extra={"stores": len(stores)})
            verdict(problems, watcher.failed_deliveries, watcher.undecided)
            return

        def stop(_sig: int, _frame: FrameType | None) -> None:
            watcher.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        watcher.run(interval=interval, inside_every=inside_every, rescan_every=rescan_every)
        log.info("stopped")


def exposures(
    store: str = typer.Argument(None, help="only this store"),
    catalog: Path = typer.Option(None, "--catalog", help="catalog file"),
    config: Path = typer.Option(None, "--config", "-c", help="configuration file (its catalog: is used)"),
    fmt: Format = FORMAT,
) -> None:
    """Exposure windows recorded by watch: when each store opened and closed, and what it held."""
    with open_catalog(catalog, read_config(config)) as cat:
        rows = cat.exposures(store)
    if fmt is Format.json:
        emit("exposures", {"exposures": [records.exposure(e) for e in rows]})
        return
    table = Table("store", "opened", "closed", "by check", "PII held", "people")
    for e in rows:
        table.add_row(safe(e.store), e.opened_at, safe(e.closed_at) if e.closed_at else Text("open", "red"),
                      safe(e.checks), safe(", ".join(e.pii_types) or "-"),
                      f"{e.subjects_estimate:,}" if e.subjects_estimate is not None else "-")
    new_console().print(table)
