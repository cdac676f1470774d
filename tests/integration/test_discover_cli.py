"""`piiguard discover` end to end: --plan, the refusals (exit 2), the JSON and SARIF documents, exit codes.

The whole-run tests need the identify step (discovery/identify.py, helper B's part) and the
inventory's matching (discovery/inventory.py, helper C's); until both are merged they are skipped
with that reason. --plan and every refusal run without it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import jsondoc
import jsonschema
import pytest
from servers import REDIS_ADMIN, Server, free_port, missing


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "piiguard", "discover", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "piiguard.yaml"
    path.write_text(body)
    return str(path)


def test_plan_counts_probes_and_sends_nothing(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.77.3.5", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    cfg = config(tmp_path, f"discovery:\n  networks: [127.77.0.0/22]\n  ports: [{port}, 5432, 6379]\n  rate: 100\n")
    try:
        text = cli("-c", cfg, "--plan")
        assert text.returncode == 0, text.stderr
        assert "1,022 address(es)" in text.stdout and "3,066 probes" in text.stdout and "nothing sent" in text.stdout
        doc = jsondoc.check(cli("-c", cfg, "--plan", "-f", "json", "127.77.3.0/24", "127.77.3.5").stdout,
                            "discovery-plan")
        assert (doc["networks"], doc["addresses"], doc["probes"]) == (["127.77.3.0/24"], 254, 762)
        assert doc["seconds"] == pytest.approx(7.62)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected: the plan sent nothing
    finally:
        listener.close()


@pytest.mark.parametrize(("body", "args", "words", "hint"), [
    ("discovery:\n  networks: [127.77.0.0/22]\n", ["10.9.0.0/24"],
     ["10.9.0.0/24 is not inside the allow-list", "127.77.0.0/22"], "add it to discovery.networks"),
    ("discovery:\n  networks: [127.77.0.0/22]\n", ["127.77.0.0/16"], ["127.77.0.0/16 is not inside"],
     "add it to discovery.networks"),
    ("discovery:\n  networks: [127.0.0.0/8]\n", [], ["16,777,214 addresses", "65,536"], "--max-addresses 16777214"),
    ("discovery:\n  networks: [fd00::/8]\n", ["fd00::/100"], ["268,435,456 addresses"], "--max-addresses"),
    ("stores: []\n", [], ["discovery.networks", "empty or missing"], "discovery: {networks: [10.20.0.0/16]}"),
    ("discovery:\n  networks: [127.77.0.0/22]\n", ["not-a-range"], ["'not-a-range' is not an address range"],
     "CIDR"),
    ("discovery:\n  networks: [127.77.0.0/22]\n", ["192.88.99.0/28"], ["192.88.99.0/28 is not inside"],
     "discovery.networks"),
    ("discovery:\n  networks: [127.0.0.0/8]\n", ["::ffff:127.0.0.1"], ["IPv4-mapped"], "127.0.0.1/32"),
    ("discovery:\n  networks: [127.0.0.0/8]\n", ["127.0.0.5/8"], ["would sweep all of 127.0.0.0/8"],
     "write 127.0.0.0/8"),
    ("discovery:\n  networks: [127.0.0.0/8]\n  max_addresses: 1000\n", ["127.1.0.0/16"], ["65,534 addresses"],
     "discovery.max_addresses: 65534"),
])
@pytest.mark.parametrize("plan", [True, False])
def test_refusals_name_the_range_and_exit_2(tmp_path: Path, body: str, args: list[str], words: list[str], hint: str,
                                            plan: bool) -> None:
    got = cli("-c", config(tmp_path, body), *(["--plan"] if plan else []), *args, "--catalog",
              str(tmp_path / "c.db"))
    assert got.returncode == 2, got.stderr
    flat = " ".join(got.stderr.split())
    for word in words:
        assert word in flat, got.stderr
    assert " ".join(hint.split()) in flat
    assert got.stdout == "" and not (tmp_path / "c.db").exists()  # refused before the catalog was opened


def test_max_addresses_raises_the_limit(tmp_path: Path) -> None:
    cfg = config(tmp_path, "discovery:\n  networks: [127.0.0.0/8]\n  ports: [5432]\n")
    got = cli("-c", cfg, "--plan", "--max-addresses", "16777214", "-f", "json")
    assert got.returncode == 0 and json.loads(got.stdout)["probes"] == 16_777_214


def test_a_public_range_not_marked_public_is_a_config_error(tmp_path: Path) -> None:
    got = cli("-c", config(tmp_path, "discovery:\n  networks: [192.88.99.0/28]\n"), "--plan")
    assert got.returncode == 2 and "discovery.networks[0]" in got.stderr and "public: true" in got.stderr


def test_no_configuration_at_all_is_refused(tmp_path: Path) -> None:
    got = cli("--plan", cwd=tmp_path)
    assert got.returncode == 2 and "no configuration" in got.stderr and "discovery:" in got.stderr


@pytest.fixture(scope="module")
def open_redis() -> Iterator[Server]:
    """A Redis with no password and protected mode off: what the story's leaked copy looked like."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing("Redis (Debian package redis-server)")
    root = Path(tempfile.mkdtemp(prefix="piiguard-redis-open-", dir="/tmp"))
    port = free_port()
    proc = subprocess.Popen([str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", str(root), "--protected-mode", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["redis-cli", "-p", str(port), "--raw", "PING"], capture_output=True, timeout=10)
    yield Server("redis", port, "default", "0", root)
    proc.kill()
    proc.wait()
    shutil.rmtree(root, ignore_errors=True)


def test_a_whole_run_finds_the_registered_and_the_open_unregistered_redis(tmp_path: Path, cache: Server,
                                                                         open_redis: Server) -> None:
    closed = free_port()
    ports = sorted({cache.port, open_redis.port, closed})
    (tmp_path / "pw").write_text("unused")
    cfg = config(tmp_path, f"stores:\n  - name: cache\n    engine: redis\n    host: 127.0.0.1\n    port: {cache.port}\n"
                           f"    user: {REDIS_ADMIN}\n    password_file: {tmp_path / 'pw'}\n"
                           f"discovery:\n  networks: [127.0.0.1/32]\n  ports: {ports}\n  timeout: 1\n")
    catalog = str(tmp_path / "c.db")
    got = cli("-c", cfg, "-f", "json", "--catalog", catalog)
    assert got.returncode == 3, got.stderr  # the open unregistered store is critical, above --fail-on high
    doc = jsondoc.check(got.stdout, "discovery")
    stores = {s["port"]: s for s in doc["stores"]}
    assert set(stores) == {cache.port, open_redis.port} and doc["probes"] == len(ports)
    assert stores[cache.port]["registered"] == "cache" and stores[cache.port]["engine"] == "redis"
    found = stores[open_redis.port]
    assert found["registered"] is None and found["open"] is True and found["severity"] == "critical"
    assert any(f["check_id"] == "discovery.unregistered-store" and f["status"] == "fail" and f["severity"] == "critical"
               for f in found["findings"])
    assert cli("-c", cfg, "--catalog", catalog, "--fail-on", "critical").returncode == 3
    table = cli("-c", cfg, "--catalog", catalog)  # stdout is a pipe: nothing may be cut to 80 columns
    assert "UNREGISTERED" in table.stdout and f"127.0.0.1:{open_redis.port}" in table.stdout
    assert "critical: discovery.unregistered-store" in table.stdout and "…" not in table.stdout, table.stdout
    listed = subprocess.run([sys.executable, "-m", "piiguard", "stores", "-c", cfg, "--catalog", catalog],
                            capture_output=True, text=True, timeout=120)
    assert f"127.0.0.1:{open_redis.port} (unregistered)" in listed.stdout and "…" not in listed.stdout, listed.stdout

    sarif = json.loads(cli("-c", cfg, "-f", "sarif", "--catalog", catalog).stdout)
    schema = json.loads((Path(__file__).parent.parent / "data" / "sarif-2.1.0.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(sarif)
    results = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "discovery.unregistered-store"]
    assert [r["locations"][0]["logicalLocations"][0]["name"] for r in results] == [f"127.0.0.1:{open_redis.port}"]


def test_a_run_that_finds_nothing_exits_0(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"discovery:\n  networks: [127.77.4.0/30]\n  ports: [{free_port()}]\n")
    got = cli("-c", cfg, "-f", "json", "--catalog", str(tmp_path / "c.db"))
    assert got.returncode == 0, got.stderr
    doc = jsondoc.check(got.stdout, "discovery")
    assert doc["stores"] == [] and doc["others"] == [] and doc["probes"] == 2


def test_a_hostile_range_argument_is_escaped_in_the_message(tmp_path: Path) -> None:
    cfg = config(tmp_path, "discovery:\n  networks: [127.77.0.0/22]\n")
    got = cli("-c", cfg, "--plan", "127.77.0.1\x1b]0;owned\x07\u202e")
    assert got.returncode == 2 and "is not an address range" in got.stderr
    assert "\x1b" not in got.stderr and "\x07" not in got.stderr and "\u202e" not in got.stderr


@pytest.mark.parametrize("listed", ["::ffff:0:0/96", "2001::/23", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16"])
def test_an_ipv6_range_carrying_ipv4_is_a_configuration_error_and_nothing_is_sent(tmp_path: Path,
                                                                                 listed: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    cfg = config(tmp_path, f"discovery:\n  networks: [\"{listed}\"]\n  ports: [{port}]\n")
    try:
        for args in (["::ffff:8.8.8.8", "--plan"], ["::ffff:127.0.0.1"]):
            got = cli("-c", cfg, *args, "--catalog", str(tmp_path / "c.db"))
            assert got.returncode == 2, got.stderr
            assert "IPv4" in " ".join(got.stderr.split()) and "write the IPv4 range itself" in " ".join(
                got.stderr.split())
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected to 127.0.0.1 through its mapped form
    finally:
        listener.close()
