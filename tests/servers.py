"""Throwaway PostgreSQL and MariaDB servers on 127.0.0.1, free ports, their own data dirs.

Facts these rely on (shared/notes/test-servers.md): PostgreSQL refuses to run as root, so initdb and
the server run as the ``postgres`` user from a dir under /tmp it can traverse, and readiness is
``pg_isready`` (TCP accepts before the server is ready). MariaDB tools need ``--no-defaults`` first.
A missing server binary skips locally and fails when ``CI=true``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "piiguard-test-pw"  # a throwaway password for throwaway servers


def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not installed; CI must have it (scripts/test installs it)")
    pytest.skip(f"{what} is not installed (scripts/test installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: list[str], seconds: float, what: str, **kw: object) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if subprocess.run(check, capture_output=True, **kw).returncode == 0:  # type: ignore[call-overload]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready in {seconds} s")


@dataclass
class Server:
    engine: str
    port: int
    user: str
    database: str
    data: Path

    def url(self, user: str | None = None, database: str | None = None) -> str:
        scheme = "postgresql" if self.engine == "postgres" else "mysql"
        return f"{scheme}://{user or self.user}@127.0.0.1:{self.port}/{database or self.database}"


def _as_postgres() -> dict[str, object]:
    return {"user": "postgres", "group": "postgres", "extra_groups": [], "cwd": "/tmp"}


HARDENED_HBA = """\
local all all scram-sha-256
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl all all ::1/128 scram-sha-256
"""


def start_postgres(*, hardened: bool = False, listen: str = "127.0.0.1", port: int | None = None,
                   netns: str | None = None, allow: str | None = None) -> Server:
    """A throwaway server. ``hardened``: TLS, scram-only hostssl loopback rules, connection logging and
    pgaudit, set in postgresql.conf (not on the command line) so tests can ALTER SYSTEM them away.
    ``netns``: run it inside that network namespace (tests/netns.py), listening on ``listen``:``port``;
    ``allow``: a range whose TCP logins pg_hba.conf accepts with a password (the namespace's network)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        missing("PostgreSQL (Debian package postgresql)")
    bindir = Path(bins[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="piiguard-pg-", dir="/tmp"))
    shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    shutil.chown(pwfile, "postgres", "postgres")
    subprocess.run([str(bindir / "initdb"), "--no-sync", "-A", "scram-sha-256", "-U", "postgres",
                    f"--pwfile={pwfile}", "-D", str(data)], check=True, capture_output=True, **_as_postgres())
    port = port or free_port()
    if hardened:
        _harden(data, root)
    if allow:
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {allow} scram-sha-256\n")
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = '{listen}'\nunix_socket_directories = '{root}'\n"
                   "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    # inside a namespace: enter it as root (setns needs it), then drop to postgres; pg_ctl -l daemonizes
    wrap = ["ip", "netns", "exec", netns, "runuser", "-u", "postgres", "--"] if netns else []
    as_user: dict[str, object] = {"cwd": "/tmp"} if netns else _as_postgres()
    subprocess.run([*wrap, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start"],
                   check=True, capture_output=True, **as_user)  # type: ignore[call-overload]
    _wait([*wrap, str(bindir / "pg_isready"), "-h", listen, "-p", str(port)], 30, "PostgreSQL")
    return Server("postgres", port, "postgres", "postgres", root)


def _harden(data: Path, root: Path) -> None:
    if not list(Path("/usr/lib/postgresql").glob("*/lib/pgaudit.so")):
        missing("pgaudit (Debian package postgresql-15-pgaudit)")
    key, cert = root / "server.key", root / "server.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-subj", "/CN=localhost", "-days", "2"], check=True, capture_output=True)
    for f in (key, cert):
        shutil.chown(f, "postgres", "postgres")
    key.chmod(0o600)
    (data / "pg_hba.conf").write_text(HARDENED_HBA)
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\nlog_connections = on\n"
                   "shared_preload_libraries = 'pgaudit'\npassword_encryption = 'scram-sha-256'\n")


def pg_ctl(server: Server, *args: str) -> None:
    bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]).parent
    # -l: a restarted server must not inherit our pipes (run() would wait for them forever)
    subprocess.run([str(bindir / "pg_ctl"), "-D", str(server.data / "data"), "-l", str(server.data / "log"), "-w",
                    *args], check=True, capture_output=True, **_as_postgres())


def stop_postgres(server: Server) -> None:
    bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]).parent
    subprocess.run([str(bindir / "pg_ctl"), "-D", str(server.data / "data"), "-m", "immediate", "stop"],
                   capture_output=True, **_as_postgres())
    shutil.rmtree(server.data, ignore_errors=True)


def start_mariadb(*, hardened: bool = False) -> Server:
    """A throwaway MariaDB. ``hardened``: TLS required, local_infile off, the audit plugin logging, only
    password-protected root accounts on localhost and 127.0.0.1."""
    if not Path(MARIADBD).exists() or not shutil.which("mariadb-install-db"):
        missing("MariaDB (Debian package mariadb-server)")
    root = Path(tempfile.mkdtemp(prefix="piiguard-maria-", dir="/tmp"))
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={root / 'data'}", "--user=root",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True)
    server = Server("mysql", free_port(), "root", "app", root)
    if hardened:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(root / "k.pem"),
                        "-out", str(root / "c.pem"), "-subj", "/CN=localhost", "-days", "2"],
                       check=True, capture_output=True)
    run_mariadbd(server, mariadb_options(server, hardened=hardened))
    subprocess.run(["mariadb", "--no-defaults", f"--socket={root / 'sock'}", "-uroot", "-e",
                    "DELETE FROM mysql.global_priv WHERE user = 'root' AND host NOT IN ('localhost', '127.0.0.1'); "
                    "FLUSH PRIVILEGES; CREATE USER IF NOT EXISTS root@'127.0.0.1'; "
                    f"ALTER USER root@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; "
                    f"ALTER USER root@localhost IDENTIFIED BY '{PASSWORD}'; "
                    "GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION; CREATE DATABASE app;"],
                   check=True, capture_output=True)
    return server


MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"


def mariadb_options(server: Server, *, hardened: bool, tls: bool = True) -> list[str]:
    options = ["--bind-address=127.0.0.1"]
    if hardened:
        options += ["--local-infile=0", "--plugin-load-add=server_audit", "--server-audit-logging=ON"]
        if tls:
            options += [f"--ssl-cert={server.data / 'c.pem'}", f"--ssl-key={server.data / 'k.pem'}",
                        "--require-secure-transport=ON"]
    return options


def run_mariadbd(server: Server, options: list[str]) -> None:
    root = server.data
    proc = subprocess.Popen([MARIADBD, "--no-defaults", "--user=root", f"--datadir={root / 'data'}",
                             f"--port={server.port}", f"--socket={root / 'sock'}", "--skip-name-resolve",
                             f"--pid-file={root / 'mariadbd.pid'}", "--innodb-flush-log-at-trx-commit=0",
                             f"--log-error={root / 'err.log'}", *options],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (root / "pid").write_text(str(proc.pid))
    _wait(["mariadb-admin", "--no-defaults", f"--socket={root / 'sock'}", "-uroot", "ping"], 30, "MariaDB")


def restart_mariadb(server: Server, options: list[str]) -> None:
    pid = int((server.data / "pid").read_text())
    os.kill(pid, 15)
    os.waitpid(pid, 0)
    run_mariadbd(server, options)


def stop_mariadb(server: Server) -> None:
    stop_pid(server)


REDIS_ADMIN = "admin"


def start_redis() -> Server:
    """A hardened Redis: loopback only, TLS port, ACL users admin (all commands) and app (no dangerous
    commands), default user off, persistence off."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing("Redis (Debian package redis-server)")
        raise AssertionError  # unreachable: missing() skips or fails
    root = Path(tempfile.mkdtemp(prefix="piiguard-redis-", dir="/tmp"))
    key, cert = root / "k.pem", root / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-subj", "/CN=localhost", "-days", "2"], check=True, capture_output=True)
    port, tls_port = free_port(), free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "-::1", "--save", "", "--appendonly", "no",
         "--dir", str(root), "--protected-mode", "yes", "--tls-port", str(tls_port), "--tls-cert-file", str(cert),
         "--tls-key-file", str(key), "--tls-auth-clients", "no",
         "--user", REDIS_ADMIN, "on", f">{PASSWORD}", "~*", "&*", "+@all",
         "--user", "app", "on", ">app-password-not-default", "~*", "&*", "+@all", "-@dangerous", "-eval",
         "-evalsha", "--user", "default", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (root / "pid").write_text(str(proc.pid))
    _wait(["redis-cli", "-p", str(port), "--user", REDIS_ADMIN, "--pass", PASSWORD, "--no-auth-warning", "PING"],
          15, "Redis")
    server = Server("redis", port, REDIS_ADMIN, "0", root)
    server.tls_port = tls_port  # type: ignore[attr-defined]
    return server


def redis_admin(server: Server) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=server.port, username=REDIS_ADMIN, password=PASSWORD)


def stop_redis(server: Server) -> None:
    stop_pid(server)


def stop_pid(server: Server) -> None:
    pid = int((server.data / "pid").read_text())
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    shutil.rmtree(server.data, ignore_errors=True)


CH_CONFIG = """<yandex>
  <logger><level>warning</level><log>{root}/log</log><errorlog>{root}/err.log</errorlog><console>0</console></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>{listen}</listen_host>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <users_config>{root}/conf/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
  <max_concurrent_queries>20</max_concurrent_queries>
</yandex>
"""

CH_USERS = """<yandex>
  <profiles><default><log_queries>{log_queries}</log_queries></default></profiles>
  <users>
    <default>
      {password}
      <networks>{networks}</networks>
      <profile>default</profile><quota>default</quota>
    </default>{extra}
  </users>
  <quotas><default></default></quotas>
</yandex>
"""


def clickhouse_users(*, password: bool = True, networks: str = "<ip>127.0.0.1</ip><ip>::1</ip>",
                     log_queries: int = 1, extra: str = "") -> str:
    hashed = hashlib.sha256(PASSWORD.encode()).hexdigest()
    return CH_USERS.format(password=f"<password_sha256_hex>{hashed}</password_sha256_hex>" if password else
                           "<password></password>", networks=networks, log_queries=log_queries, extra=extra)


def clickhouse_query(server: Server, query: str, body: bytes | None = None, **settings: str) -> str:
    """One query over a test ClickHouse's HTTP port as ``default`` (``body`` follows it, as INSERT data)."""
    params = "&".join(f"{k}={v}" for k, v in settings.items())
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/?{params}",
                                     data=(query.encode() + b"\n" + body) if body else query.encode(),
                                     headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.read().decode())


def clickhouse_supports(server: Server, expr: str) -> bool:
    """Whether the server evaluates ``expr`` (Debian's 18.16 lacks IPv6, Map and more)."""
    try:
        clickhouse_query(server, f"SELECT {expr}")
        return True
    except OSError:
        return False


def start_clickhouse() -> Server:
    """A hardened ClickHouse 18.x from its own minimal configuration (Debian's wants /var/lib and more):
    loopback only, default user with a password and loopback networks, queries logged."""
    binary = shutil.which("clickhouse-server")
    if binary is None:
        missing("ClickHouse (Debian package clickhouse-server)")
        raise AssertionError
    root = Path(tempfile.mkdtemp(prefix="piiguard-ch-", dir="/tmp"))
    (root / "conf").mkdir()
    server = Server("clickhouse", free_port(), "default", "default", root)
    server.tcp_port = free_port()  # type: ignore[attr-defined]
    write_clickhouse_config(server, listen="127.0.0.1")
    (root / "conf" / "users.xml").write_text(clickhouse_users())
    run_clickhouse(server)
    return server


def write_clickhouse_config(server: Server, *, listen: str) -> None:
    (server.data / "conf" / "config.xml").write_text(CH_CONFIG.format(
        root=server.data, http=server.port, tcp=server.tcp_port, listen=listen))  # type: ignore[attr-defined]


def run_clickhouse(server: Server) -> None:
    binary = shutil.which("clickhouse-server") or "clickhouse-server"
    proc = subprocess.Popen([binary, f"--config-file={server.data / 'conf' / 'config.xml'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=server.data)
    (server.data / "pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/ping", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("ClickHouse did not become ready in 30 s")


def restart_clickhouse(server: Server) -> None:
    pid = int((server.data / "pid").read_text())
    os.kill(pid, 15)
    os.waitpid(pid, 0)
    run_clickhouse(server)


def stop_clickhouse(server: Server) -> None:
    stop_pid(server)
