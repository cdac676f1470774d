"""Alert sinks, registered like every other plugin. A sink sends one alert or raises; retries,
backoff and the record of what was delivered belong to the service, so a sink stays small.

Alerts carry names, severities, PII *types* and a subject count — never a data value. Names come
from stores and URLs, so each sink makes them safe where it writes them: no control character ever
reaches an e-mail header, a syslog line or a terminal (a store URL holding ``%0ABcc:`` must not
add a recipient), and Slack text is escaped as Slack requires (``<!channel>`` must not ping). A sink's
``id`` is what deliveries are recorded under; it must not contain a secret (a webhook URL can:
Slack's carry their token in the path), so the webhook's id is a hash of its URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import smtplib
import socket
import ssl
import struct
import sys
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import IO, Any
from urllib.parse import urlsplit

from piiguard.errors import ConfigError, DeliveryFailed
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
    """JSON POST of the alert; with ``slack=True`` a Slack-compatible ``{"text": …}`` payload.

    Delivered means a 2xx answer to that POST. Redirects are not followed: urllib would follow a 302
    with a GET without the body (and a redirect can lead anywhere), so any 3xx is a failed delivery."""

    def __init__(self, url: str, *, slack: bool = False, timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("a webhook URL starts with http:// or https://")
        self.url, self.slack, self.timeout = url, slack, timeout

    @property
    def id(self) -> str:
        return f"webhook:{hashlib.sha256(self.url.encode()).hexdigest()[:12]}"

    def send(self, alert: dict[str, Any]) -> None:
        body = {"text": slack_escape(slack_text(alert))} if self.slack else alert
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Idempotency-Key": str(alert["dedupe_key"])})
        with _NO_REDIRECTS.open(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise OSError(f"HTTP {response.status}")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: object) -> str:
    """Text on one line, safe for a terminal and a header: each control character (CR, LF, ESC …)
    written as a ``\\xNN`` escape. Names a store chose (users, tables) are passed through
    ``piiguard.connectors.labels.label`` before they reach an alert; store and check names come
    from the configuration and piiguard."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


ident = printable


def slack_escape(text: str) -> str:
    """Slack's three escapes (https://api.slack.com/reference/surfaces/formatting#escaping): with
    them ``<!channel>`` or ``<http://x|y>`` in a name is shown as typed, never acted on."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx then reaches the default error handler: HTTPError, a failed delivery


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


_EVENTS = {"opened": "opened", "resolved": "resolved", "discovered": "discovered", "canary-used": "used"}


def slack_text(alert: dict[str, Any]) -> str:
    # opened / resolved for a check; discovered (a new store) and canary-used for discovery's alerts
    what = _EVENTS.get(str(alert["event"]), "resolved")
    data = f" — holds {', '.join(ident(t) for t in alert['pii_types'])}" if alert.get("pii_types") else ""
    people = f" of ~{alert['subjects_estimate']:,} people" if alert.get("subjects_estimate") else ""
    return (f"[{ident(alert['severity'])}] {ident(alert['store'])}: {ident(alert['check'])} {what}{data}{people}. "
            f"{printable(alert['evidence'])}")


@sinks.register("smtp")
class Email(AlertSink):
    """One e-mail per alert over SMTP: plain, upgraded with STARTTLS (``starttls=True``), or TLS from
    the first byte (``smtps=True``, port 465); the server's certificate is always verified. A login
    (password by reference) is only ever sent over TLS: a sink with a user and neither option is
    refused when it is built, and a server that does not offer STARTTLS gets no credentials."""

    def __init__(self, host: str, port: int, sender: str, recipients: Sequence[str], *, starttls: bool = False,
                 username: str | None = None, password: str | None = None, timeout: float = 10.0,
                 cafile: str | None = None, smtps: bool = False) -> None:
        if not recipients:
            raise ValueError("an e-mail sink needs at least one recipient")
        if username and not (starttls or smtps):
            raise ConfigError([f"alerts: smtp {host}:{port}: a login needs TLS"],
                              hint="set starttls: true (or smtps: true for port 465); piiguard never sends a "
                                   "password over plain SMTP")
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.starttls, self.username, self.password, self.timeout = starttls, username, password, timeout
        self.smtps = smtps
        self.cafile = cafile  # a private CA for the server's certificate; it is always verified

    @property
    def id(self) -> str:
        return f"smtp:{self.host}:{self.port}:{','.join(sorted(self.recipients))}"

    def send(self, alert: dict[str, Any]) -> None:
        message = EmailMessage()
        message["From"], message["To"] = self.sender, ", ".join(self.recipients)
        subject = f"[piiguard] {alert['severity']}: {alert['store']} {alert['check']} {alert['event']}"
        message["Subject"] = header_safe(subject)
        message["Message-ID"] = f"<{re.sub(r'[^A-Za-z0-9._-]', '-', str(alert['dedupe_key']))}@piiguard>"
        message.set_content(slack_text(alert) + "\n\n" + json.dumps(alert, indent=2))
        context = ssl.create_default_context(cafile=self.cafile)
        smtp = (smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context) if self.smtps
                else smtplib.SMTP(self.host, self.port, timeout=self.timeout))
        with smtp:
            if self.starttls and not self.smtps:
                # smtplib raises SMTPNotSupportedError when the server does not offer STARTTLS: the
                # delivery fails before any credential is sent
                smtp.starttls(context=context)
            if self.username:
                if not (self.smtps or isinstance(smtp.sock, ssl.SSLSocket)):  # never a password in clear text
                    raise DeliveryFailed(f"smtp {self.host}:{self.port}: the connection is not encrypted",
                                         hint="the login was not sent; enable STARTTLS on the server")
                smtp.login(self.username, self.password or "")
            refused = smtp.send_message(message)  # smtplib raises only when every recipient is refused
            if refused:
                raise DeliveryFailed(f"smtp {self.host}:{self.port}: {len(refused)} of {len(self.recipients)} "
                                     "recipient(s) refused", hint="check the alert's recipients")


def header_safe(text: str) -> str:
    """One header value without CR or LF, so no header of its own (``Bcc:``) can start in it,
    whatever a store's name holds."""
    return printable(text)


SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
LOCAL0 = 16


@sinks.register("syslog")
class Syslog(AlertSink):
    """RFC 5424 messages over UDP or TCP (RFC 6587 octet counting), facility local0.

    Over TCP one message is sent per connection, then piiguard closes its sending side (FIN). It
    counts as delivered only when, before the timeout, (1) the receiver's TCP stack acknowledged
    every octet and the FIN (Linux ``TCP_INFO``: nothing unacknowledged) and (2) the receiver closed
    its side in order (EOF, no reset). A TCP acknowledgement alone proves only that a kernel buffered
    the bytes: a receiver that reads closes on our FIN (rsyslog, syslog-ng, a `while recv` loop do),
    while one that closes without reading resets the connection (the kernel does, for unread data),
    and a listener that never accepts never closes — both are failed deliveries. A receiver that
    reads but keeps the connection open after our FIN is counted as failed too: piiguard cannot tell
    it from one that never read. One fresh connection is tried again before the send fails (the
    alert's ``dedupe_key`` lets a receiver that did get the first copy drop the second). UDP has no
    acknowledgement: a send is all it can prove.
    """

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
            return
        frame = b"%d " % len(line) + line
        try:
            self._tcp(frame)
        except OSError:
            self._tcp(frame)  # once more on a fresh connection; a second failure is the sink's failure

    def _tcp(self, frame: bytes) -> None:
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
            if _peer_closed(sock):
                raise ConnectionAbortedError("the syslog receiver closed the connection before the message")
            sock.sendall(frame)
            sock.shutdown(socket.SHUT_WR)  # our FIN: a receiver reads to it, then closes its side
            _await_acknowledgement(sock, time.monotonic() + self.timeout)


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the peer has already closed (EOF or a reset waiting to be read), without blocking."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _unacknowledged(sock: socket.socket) -> int | None:
    """Octets (segments) the peer has not acknowledged (Linux ``tcpi_unacked``); None elsewhere."""
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:
        return None
    info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 104)
    return int(struct.unpack_from("I", info, 24)[0]) if len(info) >= 28 else None


def _await_acknowledgement(sock: socket.socket, deadline: float) -> None:
    """Return once the peer has closed its side in order after reading (EOF, every octet
    acknowledged, no pending error); raise when it reset the connection or did not before ``deadline``."""
    eof = False
    while True:
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise ConnectionResetError(error, "the syslog receiver reset the connection")
        if eof:
            unacked = _unacknowledged(sock)
            if unacked == 0:
                return
            if unacked is None:  # no TCP_INFO: a reset for unread data follows an early EOF at once
                time.sleep(0.05)
                if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    return
                continue
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the syslog receiver did not read the message and close the connection in time")
        if eof:  # an EOF stays readable: wait for the acknowledgement (or the reset) without spinning
            time.sleep(min(left, 0.01))
            continue
        readable, _, _ = select.select([sock], [], [], min(left, 0.02))
        if readable and sock.recv(4096) == b"":  # raises on a reset; a receiver has nothing to say but EOF
            eof = True


def _sd(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_5424(alert: dict[str, Any]) -> bytes:
    pri = LOCAL0 * 8 + SYSLOG_SEVERITY.get(str(alert["severity"]), 5)
    params = " ".join(f'{k}="{_sd(ident(alert[k]))}"' for k in ("event", "store", "check", "severity", "dedupe_key"))
    data = f"[piiguard@32473 {params}]"
    host = socket.gethostname() or "-"
    head = f"<{pri}>1 {alert['at']} {host} piiguard {os.getpid()} {ident(alert['event'])}"
    return f"{head} {data} {slack_text(alert)}".encode()


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
                             password=password, timeout=timeout, cafile=a.get("cafile"), smtps=bool(a.get("smtps"))))
        elif kind == "syslog":
            parts = urlsplit(str(a["syslog"]))
            out.append(Syslog(parts.hostname or "localhost", parts.port or 514, transport=parts.scheme,
                              timeout=timeout))
        elif kind == "stdout":
            out.append(JsonLines())
    return out
