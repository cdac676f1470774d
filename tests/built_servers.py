"""Servers that Debian does not package, built from the registries this machine reaches and started on
127.0.0.1 with free ports:

- **OpenSearch 2.19.4** from Maven Central: the server jar, the transport-netty4 module and (for the
  secured variant) the real ``opensearch-security`` plugin zip, run by ``tests/launchers/opensearch``
  (a 40-line launcher compiled with the machine's JDK and Maven). The home directory is laid out like
  the distribution's, so the server loads its module and plugin through its own PluginsService.
- **FerretDB 1.24.2** (the MongoDB wire protocol) from the Go module proxy, backed by a throwaway
  PostgreSQL: authentication is PostgreSQL's (FerretDB passes the credentials through).
- **versitygw 1.8.0** (an S3 gateway over a POSIX folder, Apache-2.0) from the Go module proxy. MinIO
  is not used: its server is AGPL and the proxy serves no version of it here.

Built artefacts are cached in ``~/.cache/piiguard/servers`` (keyed by version and launcher source), so
only the first run builds (about 2 minutes, the three in parallel). ``python3 tests/built_servers.py``
builds them all; scripts/test runs it before pytest. A build tool that is missing skips locally and
fails in CI, like a missing Debian package.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers import PASSWORD, free_port, missing

from piiguard.model import Store

CACHE = Path(os.environ.get("PIIGUARD_SERVER_CACHE", Path.home() / ".cache" / "piiguard" / "servers"))
LAUNCHER = Path(__file__).parent / "launchers" / "opensearch"
OPENSEARCH_VERSION = "2.19.4"
FERRETDB = ("github.com/FerretDB/FerretDB", "v1.24.2", "./cmd/ferretdb")
VERSITYGW = ("github.com/versity/versitygw", "v1.8.0", "./cmd/versitygw")


def _run(cmd: list[str], what: str, **kw: object) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(f"building {what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _go_build(module: str, version: str, package: str) -> Path:
    """``go install module@version`` refuses modules whose go.mod has replace directives (versitygw)
    and leaves FerretDB without its version file, so the module is downloaded, copied and built as
    the main module."""
    name = package.rsplit("/", 1)[-1]
    binary = CACHE / "bin" / f"{name}-{version}"
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        missing("Go (to build test servers from the Go module proxy)")
    env = {**os.environ, "GOPATH": str(CACHE / "go"), "GOFLAGS": "-modcacherw", "CGO_ENABLED": "1"}
    info = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True,
                          text=True, env=env, cwd=tempfile.gettempdir())
    if info.returncode != 0:
        raise RuntimeError(f"go mod download {module}@{version} failed: {info.stdout[-2000:]} {info.stderr[-2000:]}")

    source = Path(json.loads(info.stdout)["Dir"])
    with tempfile.TemporaryDirectory(prefix=f"piiguard-build-{name}-") as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(source, work)
        for p in work.rglob("*"):
            p.chmod(p.stat().st_mode | 0o200)
        version_file = work / "build" / "version" / "version.txt"
        if version_file.parent.is_dir():
            version_file.write_text(version + "\n")
        binary.parent.mkdir(parents=True, exist_ok=True)
        _run(["go", "build", "-o", str(binary) + ".tmp", package], f"{module}@{version}", cwd=work, env=env)
    os.replace(str(binary) + ".tmp", binary)
    return binary


def _opensearch_build() -> Path:
    digest = hashlib.sha256()
    for p in sorted(LAUNCHER.rglob("*")):
        if p.is_file() and "target" not in p.parts:
            digest.update(p.read_bytes())
    out = CACHE / f"opensearch-{OPENSEARCH_VERSION}-{digest.hexdigest()[:12]}"
    if (out / "ready").exists():
        return out
    if shutil.which("mvn") is None or shutil.which("java") is None:
        missing("Java and Maven (to build the OpenSearch test server from Maven Central)")
    with tempfile.TemporaryDirectory(prefix="piiguard-build-opensearch-") as tmp:
        work = Path(tmp) / "launcher"
        shutil.copytree(LAUNCHER, work, ignore=shutil.ignore_patterns("target"))
        _run(["mvn", "-q", "-B", "package"], "the OpenSearch launcher", cwd=work)
        staging = Path(str(out) + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(work / "target", staging)
        (staging / "ready").write_text("")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(staging, out)
    return out


def build_all() -> None:
    with ThreadPoolExecutor(3) as pool:
        for f in [pool.submit(_go_build, *FERRETDB), pool.submit(_go_build, *VERSITYGW),
                  pool.submit(_opensearch_build)]:
            f.result()


# --- OpenSearch -------------------------------------------------------------------------------------

NETTY4_DESCRIPTOR = """description=Netty 4 based transport implementation
version={v}
name=transport-netty4
classname=org.opensearch.transport.Netty4Plugin
java.version=11
opensearch.version={v}
"""

SECURITY_SETTINGS = """
plugins.security.ssl.transport.pemcert_filepath: node.pem
plugins.security.ssl.transport.pemkey_filepath: node-key.pem
plugins.security.ssl.transport.pemtrustedcas_filepath: ca.pem
plugins.security.ssl.transport.enforce_hostname_verification: false
plugins.security.ssl.http.enabled: true
plugins.security.ssl.http.pemcert_filepath: node.pem
plugins.security.ssl.http.pemkey_filepath: node-key.pem
plugins.security.ssl.http.pemtrustedcas_filepath: ca.pem
plugins.security.allow_default_init_securityindex: true
plugins.security.nodes_dn: ["CN=node,O=piiguard"]
plugins.security.authcz.admin_dn: ["CN=admin,O=piiguard"]
plugins.security.restapi.roles_enabled: ["all_access"]
plugins.security.unsupported.restapi.allow_securityconfig_modification: true
plugins.security.audit.type: internal_opensearch
"""

INTERNAL_USERS = """_meta:
  type: "internalusers"
  config_version: 2
admin:
  hash: "{hash}"
  reserved: true
  backend_roles: ["admin"]
"""


@dataclass
class OpenSearch:
    port: int
    home: Path
    secured: bool
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    admin_password: str = PASSWORD
    http_tls: bool = True

    @property
    def tls(self) -> bool:
        return self.secured and self.http_tls

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def cafile(self) -> str:
        return str(self.home / "config" / "ca.pem")

    def store(self, name: str = "search", **kw: Any) -> Store:
        """The store as piiguard sees it: the admin user, its password by file reference."""
        pw = self.home / "admin.pw"
        pw.write_text(self.admin_password)
        options = {"cafile": self.cafile} if self.tls else {"tls": "false"}
        return Store(name, "opensearch", host="127.0.0.1", port=self.port, user="admin" if self.secured else None,
                     password_file=str(pw) if self.secured else None, options=options, **kw)

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, raw = self.request(method, path, None if body is None else json.dumps(body).encode())
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {raw[:300]!r}")
        return json.loads(raw) if raw else None

    def request(self, method: str, path: str, body: bytes | None = None, *, auth: bool = True) -> tuple[int, bytes]:
        """An administrator's (or with ``auth=False`` an anonymous) HTTP request, for test setup."""
        import base64

        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
        if auth and self.secured:
            req.add_header("Authorization",
                           "Basic " + base64.b64encode(f"admin:{self.admin_password}".encode()).decode())
        ctx = ssl.create_default_context(cafile=self.cafile) if self.tls else None
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def _certs(config: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=config)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
            "-subj", "/O=piiguard/CN=test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node-rsa.pem", "-out", "node.csr",
            "-subj", "/O=piiguard/CN=node")
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "node-rsa.pem", "-out", "node-key.pem")
    (config / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", "node.pem", "-days", "2", "-extfile", "ext")


def start_opensearch(*, secured: bool, network_host: str = "127.0.0.1", admin_password: str = PASSWORD,
                     http_tls: bool = True, attempts: int = 3) -> OpenSearch:
    """One node. ``secured``: the security plugin with TLS on HTTP (unless ``http_tls`` is false) and
    transport, one ``admin`` user (bcrypt-hashed ``admin_password``), anonymous auth off, audit events
    stored in security-auditlog-* indices."""
    build = _opensearch_build()
    home = Path(tempfile.mkdtemp(prefix="piiguard-os-", dir="/tmp"))
    config = home / "config"
    module = home / "modules" / "transport-netty4"
    module.mkdir(parents=True)
    (home / "plugins").mkdir()
    config.mkdir()
    for jar in (build / "transport-netty4").glob("*.jar"):
        shutil.copy(jar, module)
    (module / "plugin-descriptor.properties").write_text(NETTY4_DESCRIPTOR.format(v=OPENSEARCH_VERSION))
    port = free_port()
    settings = (f"cluster.name: piiguard-test\nnode.name: n1\ndiscovery.type: single-node\n"
                f"network.host: {network_host}\nhttp.port: {port}\ntransport.port: {free_port()}\n"
                f"path.data: {home / 'data'}\npath.logs: {home / 'logs'}\n"
                "cluster.routing.allocation.disk.threshold_enabled: false\n")
    if secured:
        import bcrypt

        plugin = home / "plugins" / "opensearch-security"
        plugin.mkdir()
        shutil.unpack_archive(build / f"opensearch-security-{OPENSEARCH_VERSION}.0.zip", plugin)
        security = config / "opensearch-security"
        shutil.copytree(plugin / "config", security)
        hashed = bcrypt.hashpw(admin_password.encode(), bcrypt.gensalt(rounds=10)).decode()
        (security / "internal_users.yml").write_text(INTERNAL_USERS.format(hash=hashed))
        _certs(config)
        settings += SECURITY_SETTINGS if http_tls else SECURITY_SETTINGS.replace(
            "plugins.security.ssl.http.enabled: true", "plugins.security.ssl.http.enabled: false")
    (config / "opensearch.yml").write_text(settings)
    cmd = [_java17(), "-Xms384m", "-Xmx384m",
           "-XX:+UseSerialGC", "-cp", f"{build / 'opensearch-launcher-1.jar'}:{build / 'lib'}/*",
           "piiguard.Launcher", str(home)]
    log = (home / "out.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    server = OpenSearch(port, home, secured, proc, admin_password, http_tls)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = (home / "out.log").read_text()
            shutil.rmtree(home, ignore_errors=True)
            if "BindException" in out and attempts > 1:  # a free port taken meanwhile: new ports
                return start_opensearch(secured=secured, network_host=network_host, admin_password=admin_password,
                                        http_tls=http_tls, attempts=attempts - 1)
            raise RuntimeError(f"OpenSearch exited: {out[-3000:]}")
        try:
            status, _ = server.request("GET", "/_cluster/health?wait_for_status=yellow&timeout=1s")
            if status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.5)
    stop_opensearch(server)
    raise RuntimeError("OpenSearch did not become ready in 120 s")


def _java17() -> str:
    """OpenSearch 2.19 is built for Java 17 (the machine's default; a Java 25 may sit beside it)."""
    for home in (os.environ.get("JAVA_HOME"), "/usr/lib/jvm/java-17-openjdk-amd64"):
        if home and (Path(home) / "bin" / "java").exists() and "17" in Path(home).resolve().name:
            return str(Path(home) / "bin" / "java")
    return "java"


def _stop(process: subprocess.Popen[bytes] | None, root: Path) -> None:
    if process is not None:
        process.kill()
        process.wait()
    shutil.rmtree(root, ignore_errors=True)


def stop_opensearch(server: OpenSearch) -> None:
    _stop(server.process, server.home)


# --- FerretDB ---------------------------------------------------------------------------------------

@dataclass
class Ferret:
    port: int
    root: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    tls: bool = False

    @property
    def cafile(self) -> str:
        return str(self.root / "c.pem")

    def store(self, name: str = "docs") -> Store:
        """Logs in as the backend's PostgreSQL user (PLAIN, as FerretDB 1.x expects)."""
        pw = self.root / "pw"
        pw.write_text(PASSWORD)
        options = {"auth_mechanism": "PLAIN", "tls": "true" if self.tls else "false"}
        if self.tls:
            options["cafile"] = self.cafile
        return Store(name, "mongodb", host="127.0.0.1", port=self.port, user="postgres", password_file=str(pw),
                     options=options)

    def admin(self) -> Any:
        import pymongo

        extra: dict[str, Any] = {"tls": True, "tlsCAFile": self.cafile} if self.tls else {}
        return pymongo.MongoClient("127.0.0.1", self.port, username="postgres", password=PASSWORD,
                                   authMechanism="PLAIN", directConnection=True, **extra)


def start_ferretdb(postgres_port: int, *, open_backend: bool, tls: bool = False, database: str = "ferretdb",
                   port: int | None = None) -> Ferret:
    """FerretDB on a PostgreSQL database. ``open_backend``: the backend URL carries the credentials, so
    a client that sends none is served as that user (the insecure setup); otherwise clients must log in
    with PostgreSQL credentials (PLAIN over TLS). ``tls``: the TLS listener only, no plain port. ``port``:
    a given one (a restart on the same address), else a free one."""
    binary = _go_build(*FERRETDB)
    root = Path(tempfile.mkdtemp(prefix="piiguard-ferret-", dir="/tmp"))
    port = port or free_port()
    creds = f"postgres:{PASSWORD}@" if open_backend else ""
    cmd = [str(binary), "--handler=postgresql", f"--postgresql-url=postgres://{creds}127.0.0.1:{postgres_port}/{database}",
           "--debug-addr=-", "--telemetry=disable", f"--state-dir={root}", "--log-level=WARN"]
    if tls:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(root / "k.pem"),
                        "-out", str(root / "c.pem"), "-subj", "/CN=localhost", "-days", "2",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
        cmd += ["--listen-addr=", f"--listen-tls=127.0.0.1:{port}", f"--listen-tls-cert-file={root / 'c.pem'}",
                f"--listen-tls-key-file={root / 'k.pem'}"]
    else:
        cmd += [f"--listen-addr=127.0.0.1:{port}"]
    log = (root / "out.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    server = Ferret(port, root, proc, tls)
    _wait_port(port, proc, root / "out.log", "FerretDB")
    return server


def stop_ferretdb(server: Ferret) -> None:
    _stop(server.process, server.root)


# --- versitygw (S3) ---------------------------------------------------------------------------------

S3_ROOT_KEY = "piiguard-root"


@dataclass
class S3Server:
    port: int
    root: Path
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1")

    def store(self, name: str = "bucket", bucket: str | None = None) -> Store:
        secret = self.root / "secret"
        secret.write_text(self.secret_key)
        return Store(name, "s3", host="127.0.0.1", port=self.port, database=bucket, user=self.access_key,
                     password_file=str(secret), options={"tls": "false"})


def start_versitygw(*, access_key: str = S3_ROOT_KEY, secret_key: str = PASSWORD) -> S3Server:
    """An S3 gateway over a temporary folder, root credentials given (default: not a default pair)."""
    binary = _go_build(*VERSITYGW)
    root = Path(tempfile.mkdtemp(prefix="piiguard-s3-", dir="/tmp"))
    (root / "data").mkdir()
    (root / "iam").mkdir()
    port = free_port()
    env = {**os.environ, "ROOT_ACCESS_KEY_ID": access_key, "ROOT_SECRET_ACCESS_KEY": secret_key}
    log = (root / "out.log").open("wb")
    proc = subprocess.Popen([str(binary), "--port", f"127.0.0.1:{port}", "--iam-dir", str(root / "iam"),
                             "--access-log", str(root / "access.log"), "--quiet", "posix", str(root / "data")],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    server = S3Server(port, root, access_key, secret_key, proc)
    _wait_port(port, proc, root / "out.log", "versitygw")
    return server


def stop_versitygw(server: S3Server) -> None:
    _stop(server.process, server.root)


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen in 30 s")


if __name__ == "__main__":
    started = time.monotonic()
    try:
        build_all()
    except BaseException as exc:  # missing() raises pytest's Skipped / Failed, which are BaseExceptions
        print(f"test servers not built: {exc}", file=sys.stderr)
        sys.exit(1 if os.environ.get("CI") == "true" else 0)
    print(f"test servers built or cached in {CACHE} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
