"""Benchmark: ``piiguard discover`` over a /22 beside ``nmap -sV`` on the same range and ports.

    python bench/discover_sweep.py [--rate 2000] [--concurrency 256] [--no-nmap] [--no-servers]

Run it as root (it builds network namespaces; tests/netns.py). A "farm" namespace holds the 1,024
addresses of 10.N.4.0/22 on its interface (one ``ip -batch`` of ``addr add``; the scanner reaches the
/22 through one route via the farm, so its neighbour table holds one entry, not 1,024). About 20 of
the addresses listen across engines: real redis-server, PostgreSQL, MariaDB and ClickHouse where
they are installed, plus silent listeners on store ports, web servers and SSH banners on store ports
(not stores). From the scanner namespace it runs

1. ``piiguard discover 10.N.4.0/22 --format json`` over ``discovery.settings.DEFAULT_PORTS`` and
   prints its time, probes/s and what it identified (if the discover command is not there yet, it
   times ``piiguard.discovery.sweep.sweep`` directly, and says so);
2. a plain asyncio connect sweep (no rate cap, no identification): what Python's event loop does here;
3. ``nmap -sS`` and ``nmap -sV`` (``-Pn -n -T4``) on the same range and ports (Debian package nmap:
   ``apt-get install nmap``), their times and what ``-sV`` identified;

side by side, with the nftables guard's count of packets that tried to leave the namespaces (0).
Prints; asserts nothing.

Measured 2026-12-02 (2 shared cores; defaults rate 2000, concurrency 256; discover from a trial merge
of the discovery branches): piiguard discover 19.5 s for 21,462 probes (1,098/s, sweep + identify +
outside checks), all 21 listeners told right (9 stores with engine and product, 6 silent ports
unknown, 3 web servers and 3 SSH banners on store ports not stores); plain asyncio connect 13.0 s
(1,654/s); nmap -sS 1.4 s (15,082/s, names by port: the SSH banners are "mysql", "postgresql",
"redis"); nmap -sV 176.6 s (122/s: ClickHouse's HTTP port as polipo, silent ports tcpwrapped).
0 packets left the namespaces.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import netns  # noqa: E402
from netns import Network, company_network  # noqa: E402

from piiguard.discovery.settings import DEFAULT_PORTS  # noqa: E402

PASSWORD = "bench-password-not-used-elsewhere"
_LISTENERS = """
import asyncio, sys
HTTP = b"HTTP/1.0 200 OK\\r\\nServer: nginx\\r\\nContent-Type: text/html\\r\\nContent-Length: 5\\r\\n\\r\\nhello"
GREETING = {"silent": b"", "ssh": b"SSH-2.0-OpenSSH_9.2p1 Debian-2\\r\\n", "http": HTTP}
async def main():
    servers = []
    for spec in sys.argv[1:]:
        host, port, kind = spec.split(":")
        async def handle(r, w, kind=kind):
            try:
                if kind == "http":
                    await asyncio.wait_for(r.read(1), 5)
                w.write(GREETING[kind]); await w.drain()
                await asyncio.wait_for(r.read(256), 5)
            except Exception:
                pass
            w.close()
        servers.append(await asyncio.start_server(handle, host, int(port)))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))
asyncio.run(main())
"""


def farm(net: Network, base: str) -> float:
    """1,024 addresses on the farm's eth0, a route to them from the scanner; seconds it took."""
    started = time.monotonic()
    prefix = base.rsplit(".", 2)[0]
    third = int(base.split(".")[2])
    batch = "".join(f"addr add {prefix}.{third + i // 256}.{i % 256}/32 dev eth0\n" for i in range(1024))
    subprocess.run(["ip", "netns", "exec", net.ns("farm"), "ip", "-batch", "-"], input=batch, text=True,
                   check=True, capture_output=True)
    net.run("scanner", "ip", "route", "add", f"{base}/22", "via", net.ip("farm"))
    return time.monotonic() - started


def addr(base: str, i: int) -> str:
    prefix = base.rsplit(".", 2)[0]
    third = int(base.split(".")[2])
    return f"{prefix}.{third + i // 256}.{i % 256}"


def listeners(net: Network, base: str, servers: bool) -> dict[str, str]:
    """Start ~20 listeners; address:port → what it really is."""
    truth: dict[str, str] = {}
    if servers and shutil.which("redis-server"):
        for n, (i, port) in enumerate(((7, 6379), (300, 6379), (611, 6380), (1000, 6379))):
            if n % 2:
                netns.start_redis_auth(net, "farm", PASSWORD, port=port, bind=addr(base, i))
            else:
                _redis_open(net, addr(base, i), port)
            truth[f"{addr(base, i)}:{port}"] = "redis"
    if servers and list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        from servers import start_postgres, stop_postgres

        for i, port in ((20, 5432), (520, 5433)):
            pg = start_postgres(listen=addr(base, i), port=port, netns=net.ns("farm"))
            net.cleanups.append(lambda pg=pg: stop_postgres(pg))
            truth[f"{addr(base, i)}:{port}"] = "postgres"
    if servers and shutil.which("mariadbd") and shutil.which("mariadb-install-db"):
        data = Path(tempfile.mkdtemp(prefix="piiguard-bench-maria-", dir="/tmp"))
        net.cleanups.append(lambda: shutil.rmtree(data, ignore_errors=True))
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data / 'd'}", "--user=root",
                        "--skip-test-db"], check=True, capture_output=True)
        net.popen("farm", shutil.which("mariadbd") or "mariadbd", "--no-defaults", "--user=root",
                  f"--datadir={data / 'd'}", f"--bind-address={addr(base, 33)}", "--port=3306",
                  f"--socket={data / 'sock'}", "--skip-name-resolve", f"--pid-file={data / 'pid'}")
        net.wait_tcp("scanner", addr(base, 33), 3306, seconds=60)
        truth[f"{addr(base, 33)}:3306"] = "mysql"
    if servers and shutil.which("clickhouse-server"):
        _clickhouse(net, addr(base, 44))
        truth[f"{addr(base, 44)}:8123"] = truth[f"{addr(base, 44)}:9000"] = "clickhouse"
    fakes = [(100, 27017, "silent"), (101, 9200, "silent"), (102, 11211, "silent"), (103, 5984, "silent"),
             (104, 9042, "silent"), (105, 7070, "silent"), (200, 9200, "http"), (201, 8123, "http"),
             (202, 9000, "http"), (400, 3306, "ssh"), (401, 5432, "ssh"), (402, 6379, "ssh")]
    specs = [f"{addr(base, i)}:{port}:{kind}" for i, port, kind in fakes]
    proc = net.popen("farm", sys.executable, "-c", _LISTENERS, *specs, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    for i, port, kind in fakes:
        truth[f"{addr(base, i)}:{port}"] = f"not a store ({kind})"
    return truth


def _redis_open(net: Network, host: str, port: int) -> None:
    net.popen("farm", shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", host,
              "--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", "/tmp")
    net.wait_tcp("scanner", host, port)


def _clickhouse(net: Network, host: str) -> None:
    from servers import Server, clickhouse_users, write_clickhouse_config

    root = Path(tempfile.mkdtemp(prefix="piiguard-bench-ch-", dir="/tmp"))
    (root / "conf").mkdir()
    server = Server("clickhouse", 8123, "default", "default", root)
    server.tcp_port = 9000  # type: ignore[attr-defined]
    write_clickhouse_config(server, listen=host)
    (root / "conf" / "users.xml").write_text(clickhouse_users(password=False, networks="<ip>::/0</ip>"))
    net.popen("farm", shutil.which("clickhouse-server") or "clickhouse-server",
              f"--config-file={root / 'conf' / 'config.xml'}", cwd=root)
    net.cleanups.append(lambda: shutil.rmtree(root, ignore_errors=True))
    net.wait_tcp("scanner", host, 8123, seconds=60)


def run_discover(net: Network, base: str, rate: float, concurrency: int, work: Path) -> dict[str, Any]:
    cfg = work / "piiguard.yaml"
    cfg.write_text(f"discovery:\n  networks: [{net.prefix}]\n  rate: {rate:g}\n  concurrency: {concurrency}\n"
                   "  timeout: 1.0\n")
    env = [f"PYTHONPATH={ROOT / 'src'}", f"PIIGUARD_CATALOG={work / 'catalog.db'}",
           f"XDG_CONFIG_HOME={work}", f"XDG_DATA_HOME={work}"]
    started = time.monotonic()
    got = net.run("scanner", "env", *env, sys.executable, "-m", "piiguard", "discover", f"{base}/22", "--config",
                  str(cfg), "--format", "json", check=False, timeout=1800, cwd=work)
    seconds = time.monotonic() - started
    if got.returncode in (0, 3):
        doc = json.loads(got.stdout)
        found = {s["address"]: f"{s['engine']} {s.get('product') or ''} {s.get('version') or ''}".strip()
                 for s in doc["stores"]}
        found |= {o["address"]: o["kind"] for o in doc["others"]}
        return {"how": "piiguard discover", "seconds": seconds, "probes": doc["probes"], "found": found}
    if "No such command" not in got.stderr:
        return {"how": f"piiguard discover failed ({got.returncode}): {got.stderr.strip()[-300:]}",
                "seconds": seconds, "probes": 0, "found": {}}
    # the command is not merged yet: time the sweep module itself, in the scanner namespace
    code = f"""
import json, sys, time, ipaddress
from piiguard.discovery import sweep
from piiguard.discovery.settings import DEFAULT_PORTS
hosts = [str(h) for h in ipaddress.ip_network("{base}/22")]
t = time.monotonic()
r = sweep.sweep(hosts, DEFAULT_PORTS, rate={rate}, concurrency={concurrency}, timeout=1.0)
print(json.dumps({{"seconds": time.monotonic() - t, "probes": r.probes, "open": [e.address for e in r.open],
                   "tarpits": list(r.tarpits)}}))
"""
    started = time.monotonic()
    got = net.run("scanner", "env", f"PYTHONPATH={ROOT / 'src'}", sys.executable, "-c", code, check=False,
                  timeout=1800)
    if got.returncode != 0:
        reason = "NotImplementedError" if "NotImplementedError" in got.stderr else got.stderr.strip()[-300:]
        return {"how": f"discover not merged; sweep module: {reason}", "seconds": 0.0, "probes": 0, "found": {}}
    out = json.loads(got.stdout)
    return {"how": "sweep module only (discover not merged)", "seconds": out["seconds"], "probes": out["probes"],
            "found": {a: "open" for a in out["open"]}}


_REFERENCE = """
import asyncio, ipaddress, json, sys, time
hosts = [str(h) for h in ipaddress.ip_network(sys.argv[1])]
ports = [int(p) for p in sys.argv[2].split(",")]
limit = asyncio.Semaphore(int(sys.argv[3]))
found = []
async def probe(h, p):
    async with limit:
        try:
            _, w = await asyncio.wait_for(asyncio.open_connection(h, p), 1.0)
            found.append(f"{h}:{p}")
            w.close()
        except (OSError, asyncio.TimeoutError):
            pass
async def main():
    await asyncio.gather(*(probe(h, p) for h in hosts for p in ports))
t = time.monotonic()
asyncio.run(main())
print(json.dumps({"seconds": time.monotonic() - t, "open": found}))
"""


def run_reference(net: Network, base: str, concurrency: int) -> dict[str, Any]:
    """A plain asyncio connect sweep, uncapped rate, no identification: what Python's event loop does here."""
    got = net.run("scanner", sys.executable, "-c", _REFERENCE, f"{base}/22", ",".join(map(str, DEFAULT_PORTS)),
                  str(concurrency), timeout=1800)
    out = json.loads(got.stdout)
    return {"how": f"asyncio connect, {concurrency} at once", "seconds": out["seconds"],
            "probes": 1024 * len(DEFAULT_PORTS), "found": {a: "open" for a in out["open"]}}


def run_nmap(net: Network, base: str, version: bool = True) -> dict[str, Any]:
    nmap = shutil.which("nmap")
    if nmap is None:
        return {"how": "nmap not installed (Debian: apt-get install nmap)", "seconds": 0.0, "probes": 0,
                "found": {}}
    ports = ",".join(map(str, DEFAULT_PORTS))
    started = time.monotonic()
    flags = ["-sV"] if version else ["-sS"]
    got = net.run("scanner", nmap, *flags, "-Pn", "-n", "-T4", "-p", ports, "-oX", "-", f"{base}/22",
                  check=False, timeout=3600)
    seconds = time.monotonic() - started
    found: dict[str, str] = {}
    try:
        tree = ET.fromstring(got.stdout)
    except ET.ParseError:
        return {"how": f"nmap failed: {got.stderr.strip()[-300:]}", "seconds": seconds, "probes": 0, "found": {}}
    for host in tree.iter("host"):
        ip = host.find("address").get("addr")  # type: ignore[union-attr]
        for port in host.iter("port"):
            state = port.find("state")
            if state is None or state.get("state") != "open":
                continue
            svc = port.find("service")
            what = " ".join(filter(None, (svc.get("name"), svc.get("product"), svc.get("version")))) \
                if svc is not None else "open"
            found[f"{ip}:{port.get('portid')}"] = what
    return {"how": f"nmap {flags[0]} -Pn -n -T4", "seconds": seconds, "probes": 1024 * len(DEFAULT_PORTS),
            "found": found}


def _order(address: str) -> tuple[int, int]:
    host, _, port = address.rpartition(":")
    return int(ipaddress.ip_address(host)), int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="discovery.rate (probes/s cap)")
    parser.add_argument("--concurrency", type=int, default=256, help="discovery.concurrency")
    parser.add_argument("--no-nmap", action="store_true")
    parser.add_argument("--no-servers", action="store_true", help="plain listeners only (no real engines)")
    args = parser.parse_args()
    with company_network(("scanner", "farm")) as net, tempfile.TemporaryDirectory() as tmp:
        base = str(net.prefix.network_address + 4 * 256)
        setup = farm(net, base)
        truth = listeners(net, base, not args.no_servers)
        print(f"/22 {base}/22 on the farm's eth0: 1,024 addresses in {setup:.2f} s; {len(truth)} listening; "
              f"{len(DEFAULT_PORTS)} ports; {1024 * len(DEFAULT_PORTS):,} probes a sweep")
        columns = [run_discover(net, base, args.rate, args.concurrency, Path(tmp)),
                   run_reference(net, base, args.concurrency)]
        if not args.no_nmap:
            columns += [run_nmap(net, base, version=False), run_nmap(net, base)]
        width = 30
        print("\n" + " " * 20 + "".join(f"{c['how'][:width - 2]:<{width}}" for c in columns))
        print(f"{'seconds':<20}" + "".join(f"{c['seconds']:<{width},.1f}" for c in columns))
        print(f"{'probes (connects)':<20}" + "".join(f"{c['probes']:<{width},}" for c in columns))
        print(f"{'probes/s':<20}" + "".join(
            f"{(c['probes'] / c['seconds'] if c['seconds'] else 0):<{width},.0f}" for c in columns))
        print(f"{'open found':<20}" + "".join(f"{len(c['found']):<{width}}" for c in columns))
        print(f"\n{'address':<20}{'truth':<24}" + "".join(f"{c['how'][:width - 2]:<{width}}" for c in columns))
        every = set(truth).union(*(c["found"] for c in columns))
        for address in sorted(every, key=_order):
            print(f"{address:<20}{truth.get(address, '-')[:22]:<24}" +
                  "".join(f"{c['found'].get(address, '-')[:width - 2]:<{width}}" for c in columns))
        print(f"\npackets that tried to leave the namespaces: {net.escaped()}")


if __name__ == "__main__":
    main()
