"""A peer that claims an engine and breaks its driver must not end the sweep.

The peer below answers PING and INFO as an open Redis does and "+OK" to HELLO, which makes redis-py
raise ``AttributeError`` while piiguard reads the store for copies (found by a hostile review). It is
a scripted TCP peer on loopback — a hostile server, not a mocked driver: the real redis-py talks to
it. The sweep must report that store with a problem naming it, record it, and go on.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import free_port

from piiguard.catalog import Catalog
from piiguard.config import parse_config
from piiguard.discovery import run
from piiguard.discovery.bloom import Bloom, words
from piiguard.discovery.fingerprints import Kind, digest, key_id

KEY = os.urandom(32)


def _peer(host: str, port: int, ready: threading.Event, stop: threading.Event) -> None:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await asyncio.wait_for(r.readline(), 10)
                if not line:
                    break
                args: list[bytes] = []
                if line.startswith(b"*"):
                    for _ in range(int(line[1:])):
                        await r.readline()
                        args.append((await r.readline()).strip())
                else:
                    args = line.split()
                cmd = args[0].upper() if args else b""
                if cmd == b"PING":
                    w.write(b"+PONG\r\n")
                elif cmd == b"INFO":
                    body = b"# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"
                    w.write(b"$%d\r\n%s\r\n" % (len(body), body))
                elif cmd in (b"CLIENT", b"HELLO", b"SELECT"):
                    w.write(b"+OK\r\n")
                else:
                    break
                await w.drain()
        except (TimeoutError, OSError, ValueError):
            pass
        w.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, host, port)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()

    asyncio.run(main())


@pytest.fixture()
def hostile_redis() -> Iterator[tuple[str, int]]:
    host, port = "127.0.0.218", free_port()
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_peer, args=(host, port, ready, stop), daemon=True)
    thread.start()
    assert ready.wait(5)
    yield host, port
    stop.set()
    thread.join(5)


def test_a_driver_that_breaks_on_a_hostile_peer_ends_no_sweep(hostile_redis: tuple[str, int],
                                                               tmp_path: Path) -> None:
    host, port = hostile_redis
    with socket.create_connection((host, port), timeout=2):
        pass
    config = parse_config({"discovery": {"networks": [f"{host}/32"], "ports": [port]}})
    with Catalog(tmp_path / "c.db", timeline_key=b"t" * 32) as cat:
        h1, h2 = words(b"".join(d for d in (digest(KEY, f"p{i}@example.com", Kind.EMAIL) for i in range(50))
                                if d is not None))
        bloom = Bloom.empty(100)
        bloom.add(h1, h2)
        cat.save_fingerprint({"store": "prod", "collection": "public.customers", "field": "email", "kind": "email",
                              "key_id": key_id(KEY), "people": 50, "capacity": 100, "hashes": bloom.hashes, "built": None,
                              "bits": bloom.to_bytes()})
        os.environ["PIIGUARD_TEST_DISCOVERY_KEY"] = KEY.hex()
        try:
            config = parse_config({"discovery": {"networks": [f"{host}/32"], "ports": [port],
                                                 "key_env": "PIIGUARD_TEST_DISCOVERY_KEY"}})
            result = run.discover(config, catalog=cat)
        finally:
            del os.environ["PIIGUARD_TEST_DISCOVERY_KEY"]
        names = [d.name for d in result.stores]
        assert names == [f"{host}:{port}"], names
        assert result.stores[0].open  # it answered PING without AUTH: an open Redis as far as anyone can tell
        problems = [p for p in result.problems if p.where == f"{host}:{port}"]
        assert problems and all(p.hint for p in problems), result.problems
        assert [(r["host"], r["port"]) for r in cat.discovered()] == [(host, port)]
