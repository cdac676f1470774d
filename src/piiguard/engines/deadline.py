"""An overall deadline on one network step, whatever the driver does inside it.

Socket timeouts bound each read, not a whole exchange: a peer that drips one byte a second, or
streams bytes without end, keeps every read short and the exchange endless; a driver that retries
or tries several addresses multiplies the wait. :func:`deadline` bounds the step itself. While it is
active, every socket the current thread connects is noted (through the interpreter's
``socket.connect`` audit event, so pure-Python drivers — PyMySQL, redis-py, clickhouse-driver,
urllib3 under opensearch-py and botocore — need no cooperation); when the time is up those sockets are
shut down, the blocked read returns, and the driver's error becomes
:class:`~piiguard.errors.StoreUnreachable` naming the store and the limit. A socket the driver has
since wrapped in TLS is reached through its descriptor, and only while that descriptor is still a
connection to the same peer (a closed and reused number is left alone). Drivers that keep their
sockets in C (libpq) or in threads of their own (pymongo) are bounded by their own total timeouts;
:func:`bounded` runs anything else in a helper thread and stops waiting for it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from piiguard.errors import StoreUnreachable
from piiguard.model import Store

R = TypeVar("R")
SLACK = 0.5  # seconds on top of the timeout before a step is cut: lets a driver report its own timeout first
_local = threading.local()


class Watch:
    """One active deadline: the sockets connected under it, and whether it expired."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.sockets: list[tuple[socket.socket, int, tuple[Any, ...]]] = []
        self.lock = threading.Lock()

    def add(self, sock: socket.socket, address: Any) -> None:
        entry = (sock, sock.fileno(), tuple(address[:2]) if isinstance(address, tuple) else ())
        with self.lock:
            if self.expired:  # connected after the end: cut it at once
                _shut(*entry)
            else:
                self.sockets.append(entry)

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            for entry in self.sockets:
                _shut(*entry)


def _shut(sock: socket.socket, fd: int, address: tuple[Any, ...]) -> None:
    # shutdown, never close: closing from another thread could free the descriptor number while the
    # driver still uses it, and the next open file would receive its writes.
    with contextlib.suppress(OSError):
        if sock.fileno() != -1:
            sock.shutdown(socket.SHUT_RDWR)
            return
        # Wrapped in TLS: ssl took the descriptor over and detached this object. Shut the connection
        # down through a duplicate of the descriptor, only if it is still a socket connected to the
        # same peer (the number may have been closed and reused meanwhile).
        if fd < 0 or not address:
            return
        copy = os.dup(fd)
        try:
            dup = socket.socket(fileno=copy)
        except OSError:  # not a socket any more
            os.close(copy)
            return
        with dup:
            if dup.type == socket.SOCK_STREAM and tuple(dup.getpeername()[:2]) == address:
                dup.shutdown(socket.SHUT_RDWR)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        for watch in getattr(_local, "watches", ()):
            watch.add(args[0], args[1])


_installed = threading.Lock()
_hooked = False


def _install() -> None:
    global _hooked
    with _installed:
        if not _hooked:
            sys.addaudithook(_hook)  # process-wide and permanent; costs one attribute lookup per event
            _hooked = True


@contextlib.contextmanager
def deadline(store: Store, seconds: float, what: str = "answer") -> Iterator[Watch]:
    """Bound everything inside the block to ``seconds`` (plus a little slack). On expiry, whatever the
    driver raised becomes :class:`StoreUnreachable` naming the store and the limit."""
    _install()
    watch = Watch(seconds + SLACK)
    watches: list[Watch] = getattr(_local, "watches", [])
    _local.watches = [*watches, watch]
    timer = threading.Timer(watch.seconds, watch.expire)
    timer.daemon = True
    timer.start()
    try:
        yield watch
    except Exception as exc:
        if watch.expired:
            raise expired(store, seconds, what) from exc
        raise
    finally:
        timer.cancel()
        _local.watches = watches
    if watch.expired:  # the driver swallowed the hang-up and returned: what it returned is not trusted
        raise expired(store, seconds, what)


def expired(store: Store, seconds: float, what: str = "answer") -> StoreUnreachable:
    return StoreUnreachable(store.name, f"no complete {what} from {store.address} within {seconds:g} s",
                            hint="the peer is silent, slow or not this engine; check the address and port")


def bounded(store: Store, seconds: float, step: Callable[[], R], what: str = "answer",
            late: Callable[[R], object] | None = None) -> R:
    """Run ``step`` in a helper thread and wait at most ``seconds`` (plus slack) for it — for drivers
    whose sockets :func:`deadline` cannot reach. A step that overruns is abandoned (its own timeouts
    end it later; ``late`` then receives what it returned, e.g. to close a connection nobody will
    use) and reported as :class:`StoreUnreachable`."""
    box: dict[str, Any] = {}
    done = threading.Event()
    lock = threading.Lock()

    def run() -> None:
        try:
            value = step()
        except BaseException as exc:  # handed to the caller's thread, raised there
            box["error"] = exc
        else:
            with lock:
                box["value"] = value
                abandoned = box.get("abandoned", False)
            if abandoned and late is not None:
                with contextlib.suppress(Exception):
                    late(value)
        finally:
            done.set()

    threading.Thread(target=run, name=f"piiguard-step-{store.name}", daemon=True).start()
    if not done.wait(seconds + SLACK):
        with lock:
            box["abandoned"] = "value" not in box
        if box["abandoned"]:
            raise expired(store, seconds, what)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
