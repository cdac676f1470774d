"""A TCP connect sweep: rate- and concurrency-capped, asyncio; a host accepting every port is a tarpit.

Why a connect sweep and not SYN packets: it needs no raw sockets (no root, no capabilities), and what
it measures — "a client can complete a handshake here" — is exactly what an attacker's client needs.
Nothing is sent on an open connection; it is closed at once. Telling what answers is the next step's
work (:mod:`piiguard.discovery.identify`).

The caps, all three from ``discovery:`` in piiguard.yaml:

- ``rate``: connection attempts per second, at most. A token bucket holding at most 10 ms of tokens
  (and at least one), so the achieved rate over any stretch longer than that stays at the cap.
- ``concurrency``: connections in flight at once, at most — and never more than the process may
  open: the cap is lowered to leave 64 descriptors (or a quarter of RLIMIT_NOFILE, if more) free for
  the catalog, logs and the identify step (:func:`concurrency_cap`).
- ``timeout``: seconds one connect may take. Refused, unreachable and timed out are all "closed" —
  when the answer came from the network. A connect this machine refuses at once (EINVAL: a
  link-local IPv6 address without an interface scope; ENETUNREACH / EHOSTUNREACH: no route; EPERM /
  EACCES: a local firewall rule; EAFNOSUPPORT: no IPv6 here) never left it, and is ``unsent``.

Probes go port by port across all hosts (every host's 5432, then every host's 5433, …), so no host
takes a burst of connections. A **tarpit** is a host that accepts at least 90 % of the ports it was
offered, when at least :data:`TARPIT_MIN_PORTS` (8) were offered: it is reported once and none of its
ports is handed on as open. With fewer ports offered no host is called a tarpit, because a real
server can well listen on all of a short list (a database host with 5432 and 6379).

A local failure is not a closed port. A passing one (the process is out of descriptors, or of
ephemeral ports) is retried after a short pause; one that cannot pass (:data:`UNSENDABLE`) is not.
A probe that still could not be sent is counted in ``unsent`` and, per host, in ``unsent_hosts``
with the errno, so the run can name the range and say why; it is never silently taken for "closed".
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from piiguard.discovery.base import Endpoint
from piiguard.errors import PiiguardError

log = logging.getLogger(__name__)

TARPIT_MIN_PORTS = 8
TARPIT_SHARE = 0.9
FD_RESERVE = 64
LOCAL_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL, errno.ENOBUFS, errno.ENOMEM})
# Refused by this machine before anything was sent, and not for a passing reason: not retried. Only
# an immediate connect() result counts; the same errno read later (SO_ERROR) is the network's answer.
UNSENDABLE = frozenset({errno.EINVAL, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EPERM, errno.EACCES,
                        errno.EAFNOSUPPORT})
RETRIES = 5


@dataclass(frozen=True)
class SweepResult:
    open: tuple[Endpoint, ...]  # accepted a connection (tarpit hosts' ports left out)
    tarpits: tuple[str, ...]  # hosts that accepted (nearly) every port: reported once each
    probes: int  # connection attempts sent
    seconds: float
    unsent: int = 0  # probes this machine could not send (see UNSENDABLE, LOCAL_ERRORS), after retries
    unsent_hosts: tuple[tuple[str, int, int], ...] = ()  # (host, probes unsent, last errno), by host


def concurrency_cap(wanted: int, limit: int | None = None) -> int:
    """``wanted``, lowered below the soft RLIMIT_NOFILE (``limit``) less a reserve for everything else."""
    if limit is None:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if limit == resource.RLIM_INFINITY:
            return max(1, wanted)
    reserve = max(FD_RESERVE, limit // 4)
    return max(1, min(wanted, limit - reserve))


class TokenBucket:
    """At most ``rate`` takes per second; ``burst`` tokens may be saved up (10 ms' worth, at least one).

    Kept as the time the next token is due, so each take reserves its own slot and sleeps once until
    it: hundreds of waiting workers do not all wake to race for each token. Not thread-safe and needs
    none: it is used from one event loop, and nothing awaits between reading and moving the slot."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"rate {rate!r}: expected probes per second above 0")
        self.rate = rate
        self.burst = max(1.0, rate / 100)
        self.clock = clock
        self.due = clock()

    async def take(self) -> None:
        now = self.clock()
        slot = max(self.due, now - (self.burst - 1) / self.rate)  # unused tokens saved, up to the burst
        self.due = slot + 1 / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)


def sweep(hosts: Iterable[str], ports: Sequence[int], *, rate: float, concurrency: int, timeout: float,
          progress: Callable[[int, int], None] | None = None, count: int | None = None) -> SweepResult:
    """Try a connection to every host × port, sending nothing; ``progress(done, total)``.

    ``hosts`` given with its ``count`` (``networks.Addresses``: no repeats, iterable once per port) is
    streamed, never held: memory does not grow with the number of addresses. Any other iterable is
    taken as a list, each address once, in the order given."""
    cap = concurrency_cap(concurrency)
    if cap < concurrency:
        log.warning("sweep: concurrency %d lowered to %d, below this process's open-file limit (RLIMIT_NOFILE %d)",
                    concurrency, cap, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    if count is None:
        # Each address once, in the order given: a repeated one would be probed (and counted) twice.
        listed = list(dict.fromkeys(hosts))
        hosts, count = listed, len(listed)
    elif iter(hosts) is hosts:
        raise ValueError("sweep: hosts with a count must be iterable once per port, not an iterator")
    job = _Sweep(hosts, count, tuple(dict.fromkeys(ports)), rate, cap, timeout, progress)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run(job)
    # Called from inside an event loop (a watch loop, a notebook): run on a thread with its own loop.
    box: list[SweepResult | BaseException] = []

    def work() -> None:
        try:
            box.append(_run(job))
        except BaseException as exc:  # handed back to the caller's thread, raised there
            box.append(exc)

    thread = threading.Thread(target=work, name="piiguard-sweep")
    thread.start()
    thread.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _run(job: _Sweep) -> SweepResult:
    """The sweep on a new event loop; a loop that cannot even be made (no descriptor left for its
    selector) is an error naming the limit, not a traceback."""
    try:
        loop = asyncio.new_event_loop()
    except OSError as exc:
        if exc.errno not in LOCAL_ERRORS:
            raise
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        raise PiiguardError(f"the sweep could not start: this process has no file descriptor to spare "
                            f"(RLIMIT_NOFILE {soft})",
                            hint="raise the limit (ulimit -n) or run fewer things in this process") from exc
    try:
        return loop.run_until_complete(job.run())
    finally:
        loop.close()


class _Sweep:
    def __init__(self, hosts: Iterable[str], count: int, ports: tuple[int, ...], rate: float, concurrency: int,
                 timeout: float, progress: Callable[[int, int], None] | None) -> None:
        self.hosts, self.ports, self.rate, self.concurrency, self.timeout = hosts, ports, rate, concurrency, timeout
        self.progress = progress
        self.total = count * len(ports)
        self.done = self.sent = self.unsent = 0
        self.every = max(1, self.total // 200)  # progress about 200 times a sweep, not per probe
        self.accepted: list[Endpoint] = []
        self.unsent_at: dict[str, tuple[int, int]] = {}  # host -> (probes unsent, last errno)

    async def run(self) -> SweepResult:
        started = time.monotonic()
        bucket = TokenBucket(self.rate)
        work = ((host, port) for port in self.ports for host in self.hosts)
        workers = [asyncio.create_task(self._worker(work, bucket))
                   for _ in range(min(self.concurrency, self.total))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
        if self.unsent:
            log.warning("sweep: %d probe(s) could not be sent from this machine (to %d address(es))",
                        self.unsent, len(self.unsent_at))
        if self.progress and self.done % self.every:
            self.progress(self.done, self.total)
        tarpits = self._tarpits()
        found = tuple(sorted(e for e in self.accepted if e.host not in tarpits))
        unsent_hosts = tuple((h, n, code) for h, (n, code) in self.unsent_at.items())
        return SweepResult(found, tuple(sorted(tarpits)), self.sent, time.monotonic() - started, self.unsent,
                           unsent_hosts)

    def _tarpits(self) -> set[str]:
        if len(self.ports) < TARPIT_MIN_PORTS:
            return set()
        per_host = Counter(e.host for e in self.accepted)
        return {h for h, n in per_host.items() if n >= TARPIT_SHARE * len(self.ports)}

    async def _worker(self, work: Iterable[tuple[str, int]], bucket: TokenBucket) -> None:
        for host, port in work:  # one generator shared by every worker: each item is taken once
            if await self._probe(host, port, bucket):
                self.accepted.append(Endpoint(host, port))
            self.done += 1
            if self.progress and self.done % self.every == 0:
                self.progress(self.done, self.total)

    async def _probe(self, host: str, port: int, bucket: TokenBucket) -> bool:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        code = 0
        for attempt in range(RETRIES):
            await bucket.take()
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as exc:
                code = exc.errno or 0
                if code in LOCAL_ERRORS:
                    await asyncio.sleep(0.02 * (attempt + 1))
                    continue
                if code in UNSENDABLE:  # no IPv6 on this machine: no retry helps
                    break
                raise
            try:
                sock.setblocking(False)
                code, at_once = await self._connect(sock, (host, port))
            finally:
                sock.close()
            if code in LOCAL_ERRORS:  # it never left: try again after a pause
                await asyncio.sleep(0.02 * (attempt + 1))
                continue
            if at_once and code in UNSENDABLE:  # refused here, before any packet: no retry helps
                break
            self.sent += 1
            # Refused, unreachable host or network, timed out: nothing listens for us there.
            return code == 0
        self.unsent += 1
        count, _ = self.unsent_at.get(host, (0, 0))
        self.unsent_at[host] = (count + 1, code)
        return False

    async def _connect(self, sock: socket.socket, address: tuple[str, int]) -> tuple[int, bool]:
        """The connect's errno (0: accepted), ETIMEDOUT after ``timeout``, and whether connect() itself
        returned it (this machine's answer, not the network's). A non-blocking connect and one
        writability wait with a timer: cheaper per probe than ``wait_for(loop.sock_connect(…))``, which
        is most of a loopback probe's cost."""
        code = sock.connect_ex(address)
        if code not in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            return code, True
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def done() -> None:
            if not ready.done():
                ready.set_result(None)

        fd = sock.fileno()
        loop.add_writer(fd, done)
        timer = loop.call_later(self.timeout, done)
        try:
            await ready
        finally:
            loop.remove_writer(fd)
            timer.cancel()
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            try:
                sock.getpeername()  # woken by the timer with the handshake still pending: not connected
            except OSError:
                return errno.ETIMEDOUT, False
        return code, False
