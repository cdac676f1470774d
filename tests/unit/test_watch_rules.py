from __future__ import annotations

from piiguard.model import Finding, Severity, Status, Store, Transition, Vantage
from piiguard.watch.service import alerts_for, exposure_state
from piiguard.watch.sinks import Webhook, slack_text


def f(check: str, status: Status, severity: Severity = Severity.CRITICAL, vantage: Vantage = Vantage.OUTSIDE,
      store: str = "s") -> Finding:
    return Finding(check, store, status, severity, vantage, "title", "evidence")


def t(finding: Finding, before: Status | None, event_id: int = 1) -> Transition:
    return Transition(event_id, finding, before, "2026-11-25T20:00:00+00:00")


def test_alerts_open_on_failure_and_resolve_on_pass_but_errors_say_nothing() -> None:
    alerts = alerts_for([t(f("a", Status.FAIL), None, 1), t(f("b", Status.PASS), Status.FAIL, 2),
                         t(f("c", Status.ERROR), Status.FAIL, 3), t(f("d", Status.PASS), None, 4),
                         t(f("e", Status.FAIL), Status.ERROR, 5)])
    assert [(a.check, a.event) for a in alerts] == [("a", "opened"), ("b", "resolved"), ("e", "opened")]
    assert alerts[0].dedupe_key == "s:a:opened:1"


def test_only_open_door_checks_open_exposures_and_unreachable_stores_are_left_alone() -> None:
    from piiguard import plugins

    plugins.load()
    stores = [Store("open", "redis"), Store("closed", "redis"), Store("gone", "redis"), Store("weak", "redis")]
    findings = [f("redis.no-auth", Status.FAIL, store="open"), f("redis.no-auth", Status.PASS, store="closed"),
                f("redis.no-auth", Status.ERROR, store="gone"), f("redis.no-auth", Status.PASS, store="weak"),
                f("redis.no-tls", Status.FAIL, Severity.HIGH, store="weak"),
                f("redis.dangerous-commands", Status.FAIL, vantage=Vantage.INSIDE, store="closed")]
    state = exposure_state(stores, findings)
    assert state["open"] is not None and state["closed"] is None and state["weak"] is None
    assert "gone" not in state


def test_webhook_ids_hide_the_url_and_slack_text_has_no_values() -> None:
    hook = Webhook("https://hooks.example.com/services/T000/B000/secret-token")
    assert "secret" not in hook.id and hook.id.startswith("webhook:")
    text = slack_text({"event": "opened", "severity": "critical", "store": "cache", "check": "redis.no-auth",
                       "evidence": "INFO was answered", "pii_types": ["email"], "subjects_estimate": 1200})
    assert text == "[critical] cache: redis.no-auth opened — holds email of ~1,200 people. INFO was answered"


def test_alert_sinks_from_yaml_with_secrets_by_reference(monkeypatch: object) -> None:
    import pytest

    from piiguard.config import parse_config
    from piiguard.errors import ConfigError
    from piiguard.watch.sinks import Email, JsonLines, Syslog, from_config

    cfg = parse_config({"alerts": [{"webhook_env": "HOOK", "slack": True},
                                   {"smtp": "mail", "port": 2525, "to": ["oncall@example.com"],
                                    "password_env": "SMTP_PW", "user": "piiguard", "starttls": True},
                                   {"syslog": "tcp://logs:601"}, {"stdout": True}]})
    mp = pytest.MonkeyPatch()
    mp.setenv("HOOK", "https://hooks.example.com/services/T0/B0/token")
    mp.setenv("SMTP_PW", "pw")
    try:
        hook, mail, log, out = from_config(cfg.alerts)
    finally:
        mp.undo()
    assert isinstance(hook, Webhook) and hook.slack and "token" not in hook.id
    assert isinstance(mail, Email) and (mail.port, mail.password) == (2525, "pw")
    assert isinstance(log, Syslog) and log.transport == "tcp" and isinstance(out, JsonLines)
    with pytest.raises(ConfigError) as err:
        parse_config({"alerts": [{"webhook": "ftp://x"}, {"smtp": "mail"}, {"pager": 1}, {"syslog": "x"},
                                 {"smtp": "mail", "to": ["a@example.com"], "user": "u", "password_env": "P"}]})
    text = "\n".join(err.value.problems)
    assert "alerts[4].user: a login needs TLS" in text
    assert "alerts[0].webhook" in text and "alerts[1].to: required" in text and "alerts[2]: expected exactly one" in text
    assert "alerts[3].syslog" in text


def test_watch_rescans_what_it_can_read_on_its_slow_schedule(tmp_path: object) -> None:
    import sqlite3
    import threading
    from pathlib import Path

    from piiguard.catalog import Catalog
    from piiguard.watch.service import Watcher

    base = Path(str(tmp_path))
    with sqlite3.connect(base / "app.db") as db:
        db.execute("CREATE TABLE users (email TEXT)")
        db.executemany("INSERT INTO users VALUES (?)", [(f"u{i}@example.org",) for i in range(50)])
    store = Store("app", "sqlite", path=str(base / "app.db"))
    with Catalog(base / "c.db") as cat:
        watcher = Watcher([store], cat, [], timeout=1)
        loop = threading.Thread(target=watcher.run, kwargs={"interval": 0.2, "rescan_every": 3600})
        loop.start()
        try:
            for _ in range(100):
                if cat.data_context("app") is not None:
                    break
                threading.Event().wait(0.1)
        finally:
            watcher.stop.set()
            loop.join(10)
        assert cat.data_context("app") == (("email",), 50)


def test_a_failure_stays_open_through_errors_and_not_applicable() -> None:
    """fail → error → fail is one opened alert; fail → error → pass resolves once; n/a proves nothing."""
    def d(finding: Finding, before: Status, decided: Status | None, event_id: int) -> Transition:
        return Transition(event_id, finding, before, "2026-11-25T20:00:00+00:00", decided)

    alerts = alerts_for([d(f("a", Status.FAIL), Status.ERROR, Status.FAIL, 1),
                         d(f("b", Status.PASS), Status.ERROR, Status.FAIL, 2),
                         d(f("c", Status.FAIL), Status.NOT_APPLICABLE, Status.PASS, 3),
                         d(f("e", Status.NOT_APPLICABLE), Status.FAIL, Status.FAIL, 4),
                         d(f("g", Status.FAIL), Status.ERROR, None, 5)])
    assert [(a.check, a.event) for a in alerts] == [("b", "resolved"), ("c", "opened"), ("g", "opened")]


def test_an_error_or_a_skipped_audit_neither_opens_nor_closes_a_window() -> None:
    from piiguard import plugins
    from piiguard.watch.service import with_last_verdicts

    plugins.load()
    stores = [Store("db", "mysql")]
    doors: dict[tuple[str, str], Finding] = {}
    first = [f("mysql.empty-password", Status.FAIL, store="db"), f("mysql.default-password", Status.PASS, store="db")]
    assert exposure_state(stores, with_last_verdicts(first, doors))["db"] is not None  # open
    erring = [f("mysql.empty-password", Status.ERROR, store="db"), f("mysql.default-password", Status.PASS, store="db")]
    assert exposure_state(stores, with_last_verdicts(erring, doors))["db"] is not None  # still open: proves nothing
    frequent = [f("mysql.empty-password", Status.PASS, store="db")]  # default-password runs with audits only
    assert exposure_state(stores, with_last_verdicts(frequent, doors))["db"] is None  # closed by a pass
    weak = [f("mysql.default-password", Status.FAIL, store="db"), f("mysql.empty-password", Status.PASS, store="db")]
    assert exposure_state(stores, with_last_verdicts(weak, doors))["db"] is not None
    assert exposure_state(stores, with_last_verdicts(frequent, doors))["db"] is not None  # audit's fail remembered
