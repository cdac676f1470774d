"""Benchmark for identification: seconds per endpoint by what answers, and endpoints per second.

    python bench/identify.py [--timeout 1] [--copies 20]

Starts a real Redis (no auth) and a Python http.server on 127.0.0.1, and hostile peers (silent,
dripping, hanging up; tests/adversarial/peers.py), then times identify() on each alone, and
identify_all() over ``--copies`` endpoints of each kind at once. The baseline is the budget (4 ×
timeout, the most one endpoint may take) and, beside it, one bare TCP connect per endpoint — the
floor any identification pays. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "adversarial"))
sys.path.insert(0, str(ROOT / "src"))

from peers import close, drip, peer, silent  # noqa: E402

from piiguard.discovery.base import Endpoint  # noqa: E402
from piiguard.discovery.identify import BUDGET, identify, identify_all  # noqa: E402


def _free() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = _free()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--protected-mode",
                             "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        time.sleep(0.02)
    try:
        yield port
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def web() -> Iterator[int]:
    folder = tempfile.mkdtemp(prefix="piiguard-bench-web-")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128  # the default backlog of 5 would time the server's queue, not identify

    server = Server(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--copies", type=int, default=20)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        ports = {"redis (open)": stack.enter_context(redis()), "http.server": stack.enter_context(web()),
                 "silent": stack.enter_context(peer(silent)), "drip": stack.enter_context(peer(drip)),
                 "hang-up": stack.enter_context(peer(close))}
        print(f"timeout {args.timeout:g} s; budget per endpoint {BUDGET * args.timeout:g} s")
        print(f"{'peer':<14} {'kind':<12} {'identify s':>10} {'connect s':>10}")
        for name, port in ports.items():
            started = time.monotonic()
            service = identify(Endpoint("127.0.0.1", port), timeout=args.timeout)
            took = time.monotonic() - started
            started = time.monotonic()
            with contextlib.suppress(OSError):  # the hang-up peer resets even the bare connect
                socket.create_connection(("127.0.0.1", port), timeout=args.timeout).close()
            bare = time.monotonic() - started
            print(f"{name:<14} {service.kind.value:<12} {took:>10.3f} {bare:>10.4f}")
        for name in ("redis (open)", "http.server", "silent"):
            endpoints = [Endpoint("127.0.0.1", ports[name])] * args.copies
            started = time.monotonic()
            identify_all(endpoints, timeout=args.timeout)
            took = time.monotonic() - started
            print(f"identify_all {args.copies} × {name}: {took:.2f} s, {args.copies / took:.1f} endpoints/s")


if __name__ == "__main__":
    main()
