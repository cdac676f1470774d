from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helpers
import leak
import psycopg
import pymysql
import pytest
from helpers import Listener, Mailbox
from servers import (
    PASSWORD,
    Server,
    free_port,
    start_mariadb,
    start_postgres,
    start_redis,
    stop_mariadb,
    stop_postgres,
    stop_redis,
)


def _record_synthetic() -> None:
    """Every synthetic row any test makes is seeded into the leak fixture (module-level data included)."""
    from piiguard import synthetic

    real = synthetic.rows

    def rows(n: int, seed: int = 7, columns: tuple[synthetic.Column, ...] = synthetic.COLUMNS,
             locales: tuple[str, ...] = ("en_US",)) -> dict[str, list[object]]:
        data = real(n, seed=seed, columns=columns, locales=locales)
        leak.record_synthetic(data, columns)
        return data

    synthetic.rows = rows  # type: ignore[assignment]


_record_synthetic()
_LEAK_WATCHED = ("integration", "adversarial")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    leaks = item.stash.get(_LEAKS, None)
    if leaks is not None and report.when in ("setup", "call"):
        leaks.emitted(f"captured stdout ({report.when})", report.capstdout)
        leaks.emitted(f"captured stderr ({report.when})", report.capstderr)


_LEAKS = pytest.StashKey[leak.Leaks]()


@pytest.fixture(autouse=True)
def leaks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[leak.Leaks | None]:
    """The leak fixture (see tests/leak.py), on every integration and adversarial test."""
    if not any(part in _LEAK_WATCHED for part in request.node.path.parts):
        yield None
        return
    tmp_path: Path = request.getfixturevalue("tmp_path")
    found = leak.Leaks(tmp_path)
    request.node.stash[_LEAKS] = found
    if "PIIGUARD_CATALOG" not in os.environ:
        monkeypatch.setenv("PIIGUARD_CATALOG", str(tmp_path / "piiguard-catalog.db"))
    leak.watch_subprocesses(found, monkeypatch)
    bodies_before = len(helpers.HTTP_BODIES)
    yield found
    for body in helpers.HTTP_BODIES[bodies_before:]:
        found.emitted("HTTP body", body)
    leak.STATS.tests += 1
    problems = found.problems()
    leak.STATS.hits += [f"{request.node.nodeid}: {p}" for p in problems]
    assert not problems, "the leak fixture found seeded values: " + "; ".join(problems)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands its leak figures to the controller, which prints the summary."""
    out = getattr(session.config, "workeroutput", None)
    if out is not None:
        s = leak.STATS
        out["leak_stats"] = [s.tests, s.artefacts, s.bytes, s.hits]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    tests, artefacts, size, hits = getattr(node, "workeroutput", {}).get("leak_stats", [0, 0, 0, []])
    s = leak.STATS
    s.tests, s.artefacts, s.bytes = s.tests + tests, s.artefacts + artefacts, s.bytes + size
    s.hits += hits


def pytest_terminal_summary(terminalreporter: Any) -> None:
    s = leak.STATS
    if s.tests:
        terminalreporter.write_line(
            f"leak fixture: {s.tests} tests, {s.artefacts} artefacts, {s.bytes / 1e6:.1f} MB searched, "
            f"{len(s.hits)} leaks")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    server = start_postgres()
    yield server
    stop_postgres(server)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[Server]:
    server = start_mariadb()
    yield server
    stop_mariadb(server)


@pytest.fixture(scope="session")
def cache() -> Iterator[Server]:
    """A hardened Redis shared by the watch and containment tests (each puts back what it changes)."""
    server = start_redis()
    yield server
    stop_redis(server)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server (aiosmtpd) on a free port, and what it received."""
    from aiosmtpd.controller import Controller

    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.server.shutdown()


@pytest.fixture
def pg_password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    return PASSWORD


@pytest.fixture
def my_password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MYSQL_PWD", PASSWORD)
    return PASSWORD


def pg_connect(server: Server, dbname: str = "postgres") -> psycopg.Connection:  # type: ignore[type-arg]
    return psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password=PASSWORD,
                           dbname=dbname, autocommit=True)


def my_connect(server: Server, database: str | None = "app") -> pymysql.connections.Connection:  # type: ignore[type-arg]
    return pymysql.connect(host="127.0.0.1", port=server.port, user="root", password=PASSWORD,
                           database=database, autocommit=True)


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.db"


@pytest.fixture(autouse=True)
def _own_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """What piiguard keeps in the user's folders by default (the timeline key, the default catalog) goes
    to folders of the test's, never to the real ~/.config or ~/.local/share other runs share."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
