"""A company network on this host, built from network namespaces, for discovery's end-to-end tests.

Why namespaces: discovery sweeps address ranges, and a test must never send a packet to an address
that is not this machine's. Each namespace has its own network stack, so a private range that exists
only inside the test (``10.N.0.0/16``, N from the pid) can hold a "production" PostgreSQL, an
"analytics" ClickHouse and a "cache" Redis on their default ports, and the scanner namespace sweeps
it the way piiguard would sweep a real office network.

Layout (every veth is created straight inside its namespaces; the host's root namespace holds none)::

    scanner 10.N.0.10 ─┐
    prod    10.N.0.11 ─┤
    analytics 10.N.0.12┼── bridge "br0" in its own namespace (sw)
    cache   10.N.0.13 ─┤
    farm    10.N.0.14 ─┘   (bench only: 10.N.4.0/22 on its loopback, routed from the scanner)

What makes "traffic never leaves the namespaces" provable, not assumed:

- no namespace has a default route (``ip route get 8.8.8.8`` fails in each: :meth:`Network.no_route_out`);
- every member namespace has an nftables output chain that accepts the test range and loopback and
  counts *and drops* everything else (:meth:`Network.escaped` reads the counters; it must stay 0);
- IPv6 is off in every namespace (no router solicitations or link-local chatter to count);
- the bridge's ports are exactly our veths, each with its peer in one of our namespaces, and the root
  namespace has no interface of ours (:meth:`Network.isolated`).

Use ``with company_network() as net:`` — everything (processes, namespaces, so every veth and the
bridge) is torn down on exit, whether the test passed or failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLONE_NEWNET = 0x40000000
MEMBERS = ("scanner", "prod", "analytics", "cache")
GUARD_TABLE = "piiguard_guard"


def nft_available() -> bool:
    return Path("/usr/sbin/nft").exists() or any(
        (Path(d) / "nft").exists() for d in os.environ.get("PATH", "").split(":"))


def test_prefix(pid: int | None = None, taken: Sequence[ipaddress.IPv4Network] | None = None
                ) -> ipaddress.IPv4Network:
    """A /16 of 10/8 picked from the pid, so two runs at once use different ranges (and names), and
    skipping any range the host itself has an address or a route in (``taken``; default: read from
    ``ip -j addr`` and ``ip -j route`` of the root namespace)."""
    pid = os.getpid() if pid is None else pid
    taken = host_ranges() if taken is None else taken
    for step in range(150):
        candidate = ipaddress.IPv4Network(f"10.{100 + (pid + step) % 150}.0.0/16")
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise RuntimeError("every 10.100-249.0.0/16 is used by this host; free one for the discovery tests")


def host_ranges() -> list[ipaddress.IPv4Network]:
    """The IPv4 ranges the root namespace has addresses or routes in (a default route is not a range)."""
    out = []
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True,
                                       text=True).stdout or "[]")
    for route in routes:
        dst = route.get("dst", "default")
        if dst != "default":
            with contextlib.suppress(ValueError):
                out.append(ipaddress.IPv4Network(dst, strict=False))
    for link in json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True).stdout
                           or "[]"):
        for a in link.get("addr_info", []):
            out.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return [n for n in out if not n.is_loopback]


@dataclass(frozen=True)
class Host:
    name: str  # the role: scanner, prod, …
    ns: str  # the namespace's name (unique per run)
    address: str


@dataclass
class Network:
    tag: str  # unique per run: the namespaces' name prefix
    prefix: ipaddress.IPv4Network
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cleanups: list[Any] = field(default_factory=list)

    @property
    def bridge_ns(self) -> str:
        return f"{self.tag}-sw"

    def ns(self, role: str) -> str:
        return self.hosts[role].ns

    def ip(self, role: str) -> str:
        return self.hosts[role].address

    def run(self, role: str, *cmd: str, check: bool = True, timeout: float = 120,
            **kw: Any) -> subprocess.CompletedProcess[str]:
        """``cmd`` inside ``role``'s namespace (``role`` may also be a namespace name)."""
        ns = self.hosts[role].ns if role in self.hosts else role
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], check=check, capture_output=True, text=True,
                              timeout=timeout, **kw)

    def popen(self, role: str, *cmd: str, **kw: Any) -> subprocess.Popen[bytes]:
        """A background process inside ``role``'s namespace, killed (with its group) at teardown."""
        ns = self.hosts[role].ns if role in self.hosts else role
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], start_new_session=True, **kw)
        self.processes.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    def wait_tcp(self, role: str, host: str, port: int, seconds: float = 30) -> None:
        """Wait until ``host:port`` accepts a connection from inside ``role``'s namespace."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                with inside(self.ns(role)):
                    import socket

                    with socket.create_connection((host, port), timeout=0.5):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{host}:{port} did not listen in {seconds} s (from {role})")

    # -- the containment proofs ---------------------------------------------------------------

    def escaped(self) -> int:
        """Packets any member namespace tried to send outside the test range (counted and dropped)."""
        total = 0
        for host in self.hosts.values():
            out = subprocess.run(["ip", "netns", "exec", host.ns, "nft", "-j", "list", "counter", "inet",
                                  GUARD_TABLE, "escaped"], check=True, capture_output=True, text=True).stdout
            for item in json.loads(out)["nftables"]:
                if "counter" in item:
                    total += int(item["counter"]["packets"])
        return total

    def no_route_out(self) -> list[str]:
        """The namespaces in which an outside address is routable (must be none)."""
        routable = []
        for host in self.hosts.values():
            for target in ("8.8.8.8", "192.0.2.1", "1.1.1.1"):
                got = subprocess.run(["ip", "netns", "exec", host.ns, "ip", "route", "get", target],
                                     capture_output=True, text=True)
                if got.returncode == 0:
                    routable.append(f"{host.name}: {target}")
            if "default" in subprocess.run(["ip", "netns", "exec", host.ns, "ip", "route", "show"],
                                           capture_output=True, text=True).stdout:
                routable.append(f"{host.name}: default route")
        return routable

    def isolated(self) -> list[str]:
        """Ways the host's root namespace is joined to the test network (must be none)."""
        problems = []
        ours = {h.ns for h in self.hosts.values()} | {self.bridge_ns}
        root_ids = _netns_ids(None)
        for link in _links(None):
            if root_ids.get(link.get("link_netnsid", -1)) in ours:
                problems.append(f"root namespace holds {link['ifname']}, a veth into {root_ids[link['link_netnsid']]}")
        ports = _links(self.bridge_ns, "master", "br0")
        if len(ports) != len(self.hosts):
            problems.append(f"bridge has {len(ports)} ports for {len(self.hosts)} hosts")
        ids = _netns_ids(self.bridge_ns)
        members = {h.ns for h in self.hosts.values()}
        for port in ports:
            peer = ids.get(port.get("link_netnsid", -1))
            if peer not in members:
                problems.append(f"bridge port {port['ifname']} leads to {peer or 'a namespace not ours'}")
        return problems


def _links(ns: str | None, *args: str) -> list[dict[str, Any]]:
    cmd = ["ip", "-j", "link", "show", *args]
    out = subprocess.run(["ip", "netns", "exec", ns, *cmd] if ns else cmd, check=True, capture_output=True,
                         text=True).stdout
    return list(json.loads(out or "[]"))


def _netns_ids(ns: str | None) -> dict[int, str]:
    """nsid → namespace name, as seen from ``ns`` (None: the root namespace)."""
    cmd = ["ip", "netns", "list-id"]
    out = subprocess.run(["ip", "netns", "exec", ns, *cmd] if ns else cmd, capture_output=True, text=True).stdout
    ids = {}
    for line in out.splitlines():  # "nsid 0 (iproute2 netns name: pg1-prod)"
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit() and "name:" in line:
            ids[int(parts[1])] = line.split("name:")[-1].strip(" )")
    return ids


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Run the block with this thread in namespace ``ns``: sockets opened in it belong to ``ns``
    (psycopg, redis and clickhouse clients in the test process itself, connecting "from" the scanner).
    The thread's own namespace is restored however the block ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open(f"/proc/{os.getpid()}/task/{_tid()}/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
        try:
            yield
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - nothing sane to do but stop
                os._exit(99)
    finally:
        os.close(own)
        os.close(target)


def _tid() -> int:
    import threading

    return threading.get_native_id()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _guard(ns: str, prefix: ipaddress.IPv4Network) -> None:
    """Count and drop every packet to a destination outside the test range and loopback."""
    rules = f"""
table inet {GUARD_TABLE} {{
  counter escaped {{ }}
  chain out {{
    type filter hook output priority 0; policy accept;
    ip daddr {prefix} accept
    ip daddr 127.0.0.0/8 accept
    ip6 daddr ::1 accept
    counter name "escaped" drop
  }}
}}
"""
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, check=True, capture_output=True,
                   text=True)


def _namespace(ns: str) -> None:
    _ip("netns", "add", ns)
    for key in ("all", "default"):
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1"],
                       check=True, capture_output=True)
    _ip("-n", ns, "link", "set", "lo", "up")


@contextlib.contextmanager
def company_network(roles: Sequence[str] = MEMBERS, *, pid: int | None = None) -> Iterator[Network]:
    """Build the network; tear it down (processes first, then namespaces) however the block ends."""
    if not nft_available():
        from servers import missing

        missing("nftables (Debian package nftables)")
    pid = os.getpid() if pid is None else pid
    prefix = test_prefix(pid)
    net = Network(f"pg{pid}", prefix)
    made: list[str] = []
    try:
        _namespace(net.bridge_ns)
        made.append(net.bridge_ns)
        _ip("-n", net.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", net.bridge_ns, "link", "set", "br0", "up")
        for i, role in enumerate(roles):
            ns = f"{net.tag}-{role}"
            _namespace(ns)
            made.append(ns)
            address = str(prefix.network_address + 10 + i)
            port = f"p{i}"  # names are per namespace, so short fixed ones never collide
            _ip("link", "add", "name", port, "netns", net.bridge_ns, "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            _ip("-n", net.bridge_ns, "link", "set", port, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{address}/{prefix.prefixlen}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _guard(ns, prefix)
            net.hosts[role] = Host(role, ns, address)
        yield net
    finally:
        for proc in reversed(net.processes):
            net.stop(proc)
        for cleanup in reversed(net.cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        for ns in reversed(made):
            _kill_members(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _kill_members(ns: str) -> None:
    """Whatever still runs in the namespace (a daemon that left our process group: pg_ctl's server)."""
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def python_in(net: Network, role: str, code: str, *args: str, timeout: float = 60) -> str:
    """Run a short Python snippet inside ``role``'s namespace (for clients that must not be in-process)."""
    return net.run(role, sys.executable, "-c", code, *args, timeout=timeout).stdout


# -- servers inside the namespaces, on their engines' default ports ------------------------------

BANNER = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
_BANNER_CODE = """
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
def serve(c):
    try:
        if sys.argv[3] == "--close-after-first-read":  # closes mid-fingerprint
            c.settimeout(5); c.recv(1)
        else:
            c.sendall(bytes.fromhex(sys.argv[3])); c.settimeout(5); c.recv(256)
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
_WEBHOOK_CODE = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
out = open(sys.argv[3], "ab", buffering=0)
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        out.write(body.replace(b"\\n", b" ") + b"\\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a):
        pass
ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""


def start_banner(net: Network, role: str, port: int, banner: str = BANNER) -> subprocess.Popen[bytes]:
    """A plain TCP service that greets every connection with ``banner`` (an SSH server, by default)."""
    text = banner if banner.startswith("--") else banner.encode("latin-1").hex()  # argv holds no NUL byte
    proc = net.popen(role, sys.executable, "-c", _BANNER_CODE, net.ip(role), str(port), text)
    net.wait_tcp(role, net.ip(role), port)
    return proc


HOSTILE_BANNER = "\x1b]0;owned\x07\x1b[2J" + "SSH-2.0-" + "A" * 3000 + "\x00\r\n"


def start_closer(net: Network, role: str, port: int) -> subprocess.Popen[bytes]:
    """A peer that accepts, reads the first byte of whatever it is sent, and hangs up: a store that
    closes mid-fingerprint."""
    return start_banner(net, role, port, "--close-after-first-read")


def start_tarpit(net: Network, role: str, port: int = 7777) -> subprocess.Popen[bytes]:
    """A host that accepts every TCP port: nftables in its namespace redirects every port to one
    listener that greets with nothing and holds the connection."""
    rules = f"""
table ip tarpit {{
  chain pre {{
    type nat hook prerouting priority -100; policy accept;
    tcp dport != {port} redirect to :{port}
  }}
}}
"""
    net.run(role, "nft", "-f", "-", input=rules)
    return start_banner(net, role, port, "")


def start_http(net: Network, role: str, port: int, root: Path) -> subprocess.Popen[bytes]:
    """A plain web server (``python -m http.server``): it answers, and it is not a data store."""
    proc = net.popen(role, sys.executable, "-m", "http.server", str(port), "--bind", net.ip(role),
                     "--directory", str(root))
    net.wait_tcp(role, net.ip(role), port)
    return proc


def start_webhook(net: Network, role: str, port: int, into: Path) -> subprocess.Popen[bytes]:
    """A real webhook listener: each POSTed body becomes one line of ``into``."""
    into.touch()
    proc = net.popen(role, sys.executable, "-c", _WEBHOOK_CODE, net.ip(role), str(port), str(into))
    net.wait_tcp(role, net.ip(role), port)
    return proc


def received(into: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in into.read_text().splitlines() if line.strip()]


def start_redis_auth(net: Network, role: str, password: str, port: int = 6379,
                     bind: str | None = None) -> subprocess.Popen[bytes]:
    """A Redis with ``requirepass``: a store, with auth (discovery must not call it open)."""
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        from servers import missing

        missing("Redis (Debian package redis-server)")
        raise AssertionError
    proc = net.popen(role, binary, "--port", str(port), "--bind", bind or net.ip(role), "--save", "",
                     "--appendonly", "no", "--protected-mode", "yes", "--requirepass", password,
                     "--dir", "/tmp")
    net.wait_tcp(role, bind or net.ip(role), port)
    return proc


def start_clickhouse_open(net: Network, role: str, http_port: int = 8123, tcp_port: int = 9000) -> Any:
    """A ClickHouse 18 listening on the namespace's address, default user with no password, any network:
    the open analytics copy of the story."""
    import shutil
    import tempfile

    from servers import Server, clickhouse_users, missing, write_clickhouse_config

    binary = shutil.which("clickhouse-server")
    if binary is None:
        missing("ClickHouse (Debian package clickhouse-server)")
        raise AssertionError
    root = Path(tempfile.mkdtemp(prefix="piiguard-ch-ns-", dir="/tmp"))
    (root / "conf").mkdir()
    server = Server("clickhouse", http_port, "default", "default", root)
    server.tcp_port = tcp_port  # type: ignore[attr-defined]
    write_clickhouse_config(server, listen=net.ip(role))
    (root / "conf" / "users.xml").write_text(clickhouse_users(password=False, networks="<ip>::/0</ip>"))
    net.popen(role, binary, f"--config-file={root / 'conf' / 'config.xml'}", cwd=root)
    net.cleanups.append(lambda: shutil.rmtree(root, ignore_errors=True))
    net.wait_tcp(role, net.ip(role), http_port, seconds=60)
    return server


def start_postgres_in(net: Network, role: str, port: int = 5432) -> Any:
    """The production PostgreSQL of the story, in ``role``'s namespace on its default port; password
    logins from the test range (pg_hba.conf), stopped and removed at teardown."""
    from servers import start_postgres, stop_postgres

    server = start_postgres(listen=net.ip(role), port=port, netns=net.ns(role), allow=str(net.prefix))
    net.cleanups.append(lambda: stop_postgres(server))
    return server
