from __future__ import annotations

import json
import threading
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyarrow as pa

from piiguard import plugins
from piiguard.classify.engine import Classifier
from piiguard.model import Classification, Status


@cache
def classifier() -> Classifier:
    return Classifier(plugins.detectors_for())


def classify(field: str, values: list[str | None]) -> Classification:
    c = classifier()
    state = c.new_state(field)
    c.observe(state, pa.array(values, pa.string()))
    return c.decide(state, "s", "t")


def engine_checks(engine: str) -> set[str]:
    """The engine's own checks (not the engine-independent ones such as network.exposed)."""
    from piiguard.checker import check_ids

    return {i for i in check_ids(engine) if i.startswith(f"{engine}.")}


def assert_fails_exactly(statuses: dict[str, Status], expected: set[str]) -> None:
    """The insecure-variant verdict: these checks fail, every other passes, none could not decide."""
    assert {c for c, s in statuses.items() if s is Status.FAIL} == expected
    assert [c for c, s in statuses.items() if s is Status.ERROR] == []


HTTP_BODIES: list[bytes] = []  # every body any Listener received: the leak fixture searches them


class Listener:
    """A real HTTP endpoint that records JSON posts; ``failing`` makes it answer 500."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failing = False
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                HTTP_BODIES.append(body)
                if listener.failing:
                    self.send_response(500)
                else:
                    listener.received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def events(self, check: str) -> list[str]:
        return [a["event"] for a in self.received if a["check"] == check]


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts, as text."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(envelope.content.decode())
        return "250 OK"

