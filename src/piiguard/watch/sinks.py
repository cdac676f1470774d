"""Alert sinks, registered like every other plugin. A sink sends one alert or raises; retries,
backoff and the record of what was delivered belong to the service, so a sink stays small.

Alerts carry names, severities, PII *types* and a subject count — never a data value. A sink's
``id`` is what deliveries are recorded under; it must not contain a secret (a webhook URL can:
Slack's carry their token in the path), so the webhook's id is a hash of its URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import smtplib
import socket
import ssl
import sys
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import IO, Any
from urllib.parse import urlsplit

from piiguard.errors import ConfigError
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


@sinks.register("smtp")
class Email(AlertSink):
    """One e-mail per alert over SMTP, with optional STARTTLS and login (password by reference)."""

    def __init__(self, host: str, port: int, sender: str, recipients: Sequence[str], *, starttls: bool = False,
                 username: str | None = None, password: str | None = None, timeout: float = 10.0,
                 cafile: str | None = None) -> None:
        if not recipients:
            raise ValueError("an e-mail sink needs at least one recipient")
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.starttls, self.username, self.password, self.timeout = starttls, username, password, timeout
        self.cafile = cafile  # a private CA for the server's certificate; it is always verified

    @property
    def id(self) -> str:
        return f"smtp:{self.host}:{self.port}:{','.join(sorted(self.recipients))}"

    def send(self, alert: dict[str, Any]) -> None:
        message = EmailMessage()
        message["From"], message["To"] = self.sender, ", ".join(self.recipients)
        message["Subject"] = f"[piiguard] {alert['severity']}: {alert['store']} {alert['check']} {alert['event']}"
        message["Message-ID"] = f"<{alert['dedupe_key'].replace(':', '.')}@piiguard>"
        message.set_content(slack_text(alert) + "\n\n" + json.dumps(alert, indent=2))
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=self.cafile))
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
LOCAL0 = 16


@sinks.register("syslog")
class Syslog(AlertSink):
    """RFC 5424 messages over UDP or TCP (RFC 6587 octet counting), facility local0."""

    def __init__(self, host: str, port: int, *, transport: str = "udp", timeout: float = 5.0) -> None:
        if transport not in ("udp", "tcp"):
            raise ValueError("syslog transport is udp or tcp")
        self.host, self.port, self.transport, self.timeout = host, port, transport, timeout

    @property
    def id(self) -> str:
        return f"syslog:{self.transport}:{self.host}:{self.port}"

    def send(self, alert: dict[str, Any]) -> None:
        self.deliver(format_5424(alert))

    def deliver(self, line: bytes) -> None:
        if self.transport == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(line, (self.host, self.port))
        else:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                sock.sendall(b"%d " % len(line) + line)


def _sd(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_5424(alert: dict[str, Any]) -> bytes:
    pri = LOCAL0 * 8 + SYSLOG_SEVERITY.get(str(alert["severity"]), 5)
    params = " ".join(f'{k}="{_sd(alert[k])}"' for k in ("event", "store", "check", "severity", "dedupe_key"))
    data = f"[piiguard@32473 {params}]"
    host = socket.gethostname() or "-"
    return f"<{pri}>1 {alert['at']} {host} piiguard {os.getpid()} {alert['event']} {data} {slack_text(alert)}".encode()


def from_config(alerts: Sequence[Mapping[str, Any]], *, timeout: float = 5.0) -> list[AlertSink]:
    """Sinks from ``alerts:`` in piiguard.yaml (validated there); secrets are read from the environment."""
    out: list[AlertSink] = []
    for a in alerts:
        kind = a["kind"]
        if kind == "webhook":
            url = a.get("webhook") or os.environ.get(str(a.get("webhook_env")), "")
            if not url:
                raise ConfigError([f"alerts: ${a.get('webhook_env')} is empty"], hint="export the webhook URL")
            out.append(Webhook(str(url), slack=bool(a.get("slack")), timeout=timeout))
        elif kind == "smtp":
            password = os.environ.get(str(a["password_env"])) if a.get("password_env") else None
            out.append(Email(str(a["smtp"]), int(a.get("port", 25)), str(a.get("from", "piiguard@localhost")),
                             [str(t) for t in a["to"]], starttls=bool(a.get("starttls")), username=a.get("user"),
                             password=password, timeout=timeout, cafile=a.get("cafile")))
        elif kind == "syslog":
            parts = urlsplit(str(a["syslog"]))
            out.append(Syslog(parts.hostname or "localhost", parts.port or 514, transport=parts.scheme,
                              timeout=timeout))
        elif kind == "stdout":
            out.append(JsonLines())
    return out
