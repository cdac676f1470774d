from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
