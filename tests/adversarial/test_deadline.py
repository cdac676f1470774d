"""The deadline itself: it cuts a dripping exchange (plain and inside TLS), leaves a step that ends
in time alone, and never touches a socket it did not see connect — even one that reuses the
descriptor number of a socket it did."""

from __future__ import annotations

import os
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers import BEHAVIOURS, over_tls, peer

from piiguard.engines.deadline import SLACK, bounded, deadline
from piiguard.errors import StoreUnreachable
from piiguard.model import Store

STORE = Store("drip", "redis", host="127.0.0.1")


def read_forever(sock: socket.socket) -> None:
    while sock.recv(1):
        pass
    raise ConnectionResetError("the peer hung up")


def test_a_dripping_exchange_is_cut_at_the_deadline() -> None:
    with peer(BEHAVIOURS["drip"]) as port:
        start = time.monotonic()
        with pytest.raises(StoreUnreachable, match=r"within 1\.5 s"), deadline(STORE, 1.5):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)  # each read well within 5 s
            sock.sendall(b"PING\r\n")
            read_forever(sock)
        elapsed = time.monotonic() - start
        sock.close()
    assert 1.5 <= elapsed < 1.5 + SLACK + 1


def test_a_dripping_exchange_inside_tls_is_cut_too() -> None:
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    with peer(over_tls(BEHAVIOURS["drip"])) as port:
        start = time.monotonic()
        with pytest.raises(StoreUnreachable), deadline(STORE, 1.5):
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            with client.wrap_socket(raw) as sock:  # ssl detaches `raw`: the deadline must still reach it
                sock.sendall(b"PING\r\n")
                read_forever(sock)
        elapsed = time.monotonic() - start
    assert elapsed < 1.5 + SLACK + 1


def test_a_step_that_ends_in_time_is_untouched() -> None:
    with peer(BEHAVIOURS["garbage"]) as port, deadline(STORE, 2) as watch, \
            socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"hello")
        assert sock.recv(16)
    assert not watch.expired


def test_a_reused_descriptor_number_is_left_alone() -> None:
    """The socket the deadline saw connect gives up its descriptor (as ssl's wrapping does), and the
    number comes to hold a connection to another peer, made outside the deadline: when the deadline
    expires, that connection must survive."""
    with peer(BEHAVIOURS["silent"]) as port, peer(BEHAVIOURS["silent"]) as other_port:
        theirs = socket.create_connection(("127.0.0.1", other_port), timeout=5)  # not under our deadline
        with pytest.raises(StoreUnreachable), deadline(STORE, 0.5):
            mine = socket.create_connection(("127.0.0.1", port), timeout=5)
            number = mine.detach()
            os.dup2(theirs.fileno(), number)  # the number now holds their connection (ours is closed)
            time.sleep(0.5 + SLACK + 0.3)  # the deadline expires meanwhile
        reused = socket.socket(fileno=number)
        reused.settimeout(0.2)
        with pytest.raises(TimeoutError):  # still open: a shut-down connection would read b"" at once
            reused.recv(1)
        reused.close()
        theirs.close()


def test_bounded_gives_up_waiting_and_closes_what_arrives_late() -> None:
    closed = threading.Event()

    class Late:
        def close(self) -> None:
            closed.set()

    def slow() -> Late:
        time.sleep(1.5)
        return Late()

    start = time.monotonic()
    with pytest.raises(StoreUnreachable, match=r"within 0\.5 s"):
        bounded(STORE, 0.5, slow, late=lambda c: c.close())
    assert time.monotonic() - start < 0.5 + SLACK + 0.5
    assert closed.wait(3), "the connection that arrived after the deadline was not closed"
