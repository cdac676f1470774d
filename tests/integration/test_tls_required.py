"""TLS you can require, on a real PostgreSQL with a certificate signed by a CA made here.

sslmode=verify-full with the right CA connects over TLS; with another CA it fails, saying the
certificate was not verified; policy ``require_tls: verified`` (matched by tag) refuses a plain-text
store before a byte is sent, fails ``tls.required`` naming the store, and refuses a copy into it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from servers import PASSWORD, Server, pg_ctl, start_postgres, stop_postgres

from piiguard.catalog import Catalog
from piiguard.checker import run_checks
from piiguard.config import parse_config
from piiguard.engines import postgres
from piiguard.engines.tls import TlsRefused
from piiguard.errors import ConfigError, CopyRefused, StoreUnreachable
from piiguard.masking.pipeline import plan_copy, run_copy
from piiguard.model import Status, Store

PW_ENV = "PIIGUARD_TLS_PW"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-subj", f"/CN={name}", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return key, cert


@pytest.fixture(scope="module")
def tls_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, Path]]:
    """A PostgreSQL serving TLS with a certificate for 127.0.0.1 signed by our CA (plain text allowed
    too: it is piiguard that must refuse it). Yields the server, the right CA and a wrong CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    ca_key, ca = make_ca(folder, "piiguard-test-ca")
    _, wrong = make_ca(folder, "someone-else-ca")
    server = start_postgres()
    key, csr, cert = server.data / "server.key", folder / "server.csr", server.data / "server.crt"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext))
    for f in (key, cert):
        shutil.chown(f, "postgres", "postgres")
    key.chmod(0o600)
    with (server.data / "data" / "postgresql.conf").open("a") as conf:
        conf.write(f"ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n")
    pg_ctl(server, "reload")
    try:
        yield server, ca, wrong
    finally:
        stop_postgres(server)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW_ENV, PASSWORD)


def store(server: Server, **options: str) -> Store:
    return Store("vault", "postgres", host="127.0.0.1", port=server.port, user="postgres", database="postgres",
                 password_env=PW_ENV, options=options, tags={"env": "prod"})


def _ssl_ready(server: Server, ca: Path) -> None:
    """reload is asynchronous: wait until the server presents the new certificate."""
    for _ in range(50):
        try:
            postgres.connect(store(server, sslmode="verify-full", sslrootcert=str(ca)), 5).close()
            return
        except StoreUnreachable:
            threading.Event().wait(0.1)


def test_verify_full_with_the_right_ca_connects_over_tls(tls_pg: tuple[Server, Path, Path]) -> None:
    server, ca, _ = tls_pg
    _ssl_ready(server, ca)
    with postgres.connect(store(server, sslmode="verify-full", sslrootcert=str(ca)), 5) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


def test_verify_full_with_a_wrong_ca_fails_and_says_why(tls_pg: tuple[Server, Path, Path]) -> None:
    server, ca, wrong = tls_pg
    _ssl_ready(server, ca)
    with pytest.raises(StoreUnreachable) as raised:
        postgres.connect(store(server, sslmode="verify-full", sslrootcert=str(wrong)), 5).close()
    assert raised.value.store == "vault"
    assert "certificate was not verified" in str(raised.value) and "sslrootcert" in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_a_missing_ca_file_fails_clearly(tls_pg: tuple[Server, Path, Path], tmp_path: Path) -> None:
    server, _, _ = tls_pg
    # a configuration error naming the option and the path, before any connection (exit 2)
    with pytest.raises(ConfigError, match=r"sslrootcert: the CA file .*nope\.crt does not exist"):
        postgres.connect(store(server, sslmode="verify-full", sslrootcert=str(tmp_path / "nope.crt")), 5)


def config_for(server: Server, ca: Path | None, level: str = "verified") -> object:
    url = f"postgresql://postgres@127.0.0.1:{server.port}/postgres?password_env={PW_ENV}"
    if ca is not None:
        url += f"&sslmode=verify-full&sslrootcert={ca}"
    return parse_config({
        "stores": [{"name": "vault", "url": url, "tags": {"env": "prod"}},
                   {"name": "scratch", "url": f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
                                              f"?password_env={PW_ENV}", "tags": {"env": "dev"}}],
        "policy": {"require_tls": [{"tags": {"env": "prod"}, "level": level}]}})


def test_policy_require_tls_is_stamped_by_tag() -> None:
    cfg = parse_config({"stores": [{"name": "a", "engine": "postgres", "tags": {"env": "prod"}},
                                   {"name": "b", "engine": "postgres", "tags": {"env": "dev"}}],
                        "policy": {"require_tls": [{"tags": {"env": "prod"}, "level": "verified"}]}})
    assert [s.require_tls for s in cfg.stores] == ["verified", ""]


def test_require_tls_refuses_a_plain_text_store_before_connecting() -> None:
    accepted = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)

    def accept() -> None:
        with contextlib.suppress(TimeoutError):
            accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept)
    thread.start()
    s = Store("vault", "postgres", host="127.0.0.1", port=listener.getsockname()[1], user="postgres",
              password_env=PW_ENV, require_tls="verified")
    with pytest.raises(TlsRefused) as raised:
        postgres.connect(s, 5)
    thread.join()
    listener.close()
    assert not accepted, "a connection was opened to a store policy forbids plain text with"
    assert "vault" in str(raised.value) and "verified TLS" in str(raised.value) and "sslmode=verify-full" in str(
        raised.value)


def test_tls_required_fails_a_plain_store_and_passes_a_verified_one(tls_pg: tuple[Server, Path, Path]) -> None:
    server, ca, _ = tls_pg
    _ssl_ready(server, ca)
    plain = run_checks(["vault"], config=config_for(server, None), only=["tls.required", "postgres.log-connections"],
                       record=False)
    by_id = {f.check: f for f in plain.findings}
    assert by_id["tls.required"].status is Status.FAIL and by_id["tls.required"].store == "vault"
    assert "requires verified TLS" in by_id["tls.required"].evidence
    # every inside check refuses to connect in plain text, and says so
    assert by_id["postgres.log-connections"].status is Status.ERROR
    assert "not connecting" in by_id["postgres.log-connections"].evidence
    verified = run_checks(["vault"], config=config_for(server, ca), only=["tls.required"], record=False)
    assert [(f.check, f.status) for f in verified.findings] == [("tls.required", Status.PASS)]
    assert "sslmode=verify-full" in verified.findings[0].evidence


def test_a_copy_into_a_plain_text_target_that_policy_requires_tls_for_is_refused(
        tls_pg: tuple[Server, Path, Path], tmp_path: Path) -> None:
    server, ca, _ = tls_pg
    _ssl_ready(server, ca)
    cfg = config_for(server, None)
    with postgres.connect(cfg.store("scratch"), 5) as conn:  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE IF NOT EXISTS tls_src (customer_id int, email text)")
        conn.execute("INSERT INTO tls_src SELECT i, 'user' || i || '@example.com' FROM generate_series(1, 50) i")
    plan = plan_copy(cfg.store("scratch"), "tls_src", cfg.store("vault"), "tls_copy", config=cfg)  # type: ignore[attr-defined]
    assert any(f.check == "tls.required" for f in plan.blocking)
    with Catalog(tmp_path / "c.db") as cat, pytest.raises(CopyRefused, match=r"vault fails or could not be held to .*tls\.required"):
        run_copy(plan, b"k" * 32, cat, owner="o", purpose="p", expires=date(2030, 1, 1))


@pytest.fixture(scope="module")
def tls_mariadb() -> Iterator[Server]:
    """A MariaDB that requires TLS, with a self-signed certificate for localhost (its own CA)."""
    from servers import start_mariadb, stop_mariadb

    server = start_mariadb(hardened=True)
    try:
        yield server
    finally:
        stop_mariadb(server)


def mysql_store(server: Server, **options: str) -> Store:
    return Store("ledger", "mysql", host="localhost", port=server.port, user="root", database="app",
                 password_env=PW_ENV, options=options)


def test_mysql_ssl_ca_verifies_the_server_and_a_wrong_ca_fails(tls_mariadb: Server, tmp_path: Path) -> None:
    from piiguard.engines import mysql

    with mysql.connect(mysql_store(tls_mariadb, ssl_ca=str(tls_mariadb.data / "c.pem")), 5) as conn, \
            conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cur.fetchone()[1]  # type: ignore[index]  # a cipher: the session is encrypted
    _, wrong = make_ca(tmp_path, "someone-else-ca")
    with pytest.raises(StoreUnreachable, match="TLS certificate was not verified") as raised:
        mysql.connect(mysql_store(tls_mariadb, ssl_ca=str(wrong)), 5)
    assert raised.value.store == "ledger" and PASSWORD not in str(raised.value)


@pytest.mark.parametrize("how", ["store", "policy"])
def test_no_check_connects_to_a_store_whose_required_tls_is_not_configured(cache: Server, how: str,
                                                                            tmp_path: Path) -> None:
    """Outside probes included: a plain-text Redis under require_tls: verified gets no connection at
    all (they would send INFO and guess passwords in clear text); tls.required fails and says why."""
    from servers import REDIS_ADMIN, redis_admin

    url = f"redis://{REDIS_ADMIN}@127.0.0.1:{cache.port}/0"
    if how == "store":
        stores: list[object] = [Store("r-pol", "redis", host="127.0.0.1", port=cache.port, database="0",
                                      user=REDIS_ADMIN, require_tls="verified")]
        config = None
    else:
        config = parse_config({"stores": [{"name": "r-pol", "url": url, "tags": {"env": "prod"}}],
                               "policy": {"require_tls": [{"tags": {"env": "prod"}, "level": "verified"}]}})
        stores = ["r-pol"]
    admin = redis_admin(cache)
    before = int(admin.info("stats")["total_connections_received"])
    findings = run_checks(stores, config=config, timeout=2).findings  # type: ignore[arg-type]
    after = int(admin.info("stats")["total_connections_received"])
    assert after == before, f"{after - before} plain-text connection(s) to a store that requires verified TLS"
    by_id = {f.check: f for f in findings}
    assert by_id["tls.required"].status is Status.FAIL
    others = [f for f in findings if f.check != "tls.required"]
    assert others and all(f.status is Status.ERROR and "requires verified TLS" in f.evidence for f in others)
