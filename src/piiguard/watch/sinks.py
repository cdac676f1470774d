"""Alert sinks, registered like every other plugin. A sink sends one alert or raises; retries,
backoff and the record of what was delivered belong to the service, so a sink stays small.

Alerts carry names, severities, PII *types* and a subject count — never a data value. A sink's
``id`` is what deliveries are recorded under; it must not contain a secret (a webhook URL can:
Slack's carry their token in the path), so the webhook's id is a hash of its URL.
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.request
from abc import ABC, abstractmethod
from typing import IO, Any

from piiguard.registry import Registry


class AlertSink(ABC):
    @property
    @abstractmethod
    def id(self) -> str:
        """Stable across restarts, free of secrets: deliveries are recorded under it."""

    @abstractmethod
    def send(self, alert: dict[str, Any]) -> None:
        """Deliver one alert or raise."""


sinks: Registry[type[AlertSink]] = Registry("alert sink", AlertSink)


@sinks.register("stdout")
class JsonLines(AlertSink):
    """One JSON object per line on standard output (or any stream)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    @property
    def id(self) -> str:
        return "stdout"

    def send(self, alert: dict[str, Any]) -> None:
        self.stream.write(json.dumps(alert, sort_keys=True) + "\n")
        self.stream.flush()


@sinks.register("webhook")
class Webhook(AlertSink):
    """JSON POST of the alert; with ``slack=True`` a Slack-compatible ``{"text": …}`` payload."""

    def __init__(self, url: str, *, slack: bool = False, timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("a webhook URL starts with http:// or https://")
        self.url, self.slack, self.timeout = url, slack, timeout

    @property
    def id(self) -> str:
        return f"webhook:{hashlib.sha256(self.url.encode()).hexdigest()[:12]}"

    def send(self, alert: dict[str, Any]) -> None:
        body = {"text": slack_text(alert)} if self.slack else alert
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Idempotency-Key": str(alert["dedupe_key"])})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise OSError(f"HTTP {response.status}")


def slack_text(alert: dict[str, Any]) -> str:
    what = "opened" if alert["event"] == "opened" else "resolved"
    data = f" — holds {', '.join(alert['pii_types'])}" if alert.get("pii_types") else ""
    people = f" of ~{alert['subjects_estimate']:,} people" if alert.get("subjects_estimate") else ""
    return f"[{alert['severity']}] {alert['store']}: {alert['check']} {what}{data}{people}. {alert['evidence']}"
