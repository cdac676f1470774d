"""What a check is, and the per-engine target it runs against.

A check is one security protocol of one engine. Its class docstring is its user documentation
(``piiguard show check ID`` prints it): the first line is the title, then **Risk:** and **Fix:**.
``vantage`` says where it looks from: ``OUTSIDE`` checks use no credentials — they do what an
attacker who reaches the port can do, and nothing that writes, configures or runs anything on the
target; ``INSIDE`` checks read the effective configuration with the store's configured (read-only)
credentials.

A :class:`Target` is opened once per store and shared by that engine's checks, so a settings query
or a connection is made once. A check returns an :class:`Outcome`; when it cannot decide it raises
(:class:`~piiguard.errors.StoreError` or anything else) and the runner records an ``error`` finding
with the reason — never a pass.
"""

from __future__ import annotations

import inspect
import socket
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from piiguard.checks.cached import cached_property
from piiguard.engines.deadline import deadline
from piiguard.errors import StoreError, StoreUnreachable
from piiguard.model import Severity, Status, Store, Vantage
from piiguard.registry import Registry


@dataclass(frozen=True)
class Outcome:
    status: Status
    evidence: str


def passed(evidence: str) -> Outcome:
    return Outcome(Status.PASS, evidence)


def failed(evidence: str) -> Outcome:
    return Outcome(Status.FAIL, evidence)


def not_applicable(reason: str) -> Outcome:
    """The protocol does not exist on this engine variant (a fork without the setting, a gateway
    without the API): reported with its reason, never counted as a failure or an error."""
    return Outcome(Status.NOT_APPLICABLE, reason)


class Unsupported(StoreError):
    """The engine variant does not implement what the check reads (an S3 gateway answering
    ``NotImplemented``, a Redis without ``ACL DRYRUN``): the runner reports the check not applicable,
    with this reason, instead of an error."""


class ProtocolError(StoreUnreachable):
    """Something answered, but not in the engine's protocol (garbage, a hang-up mid-handshake, a failed
    TLS handshake): for the checks as good as unreachable, so the remaining ones report it at once."""


R = TypeVar("R")
_UNVERIFIED = ssl._create_unverified_context()  # outside probes see what an attacker sees, any certificate


def unverified() -> ssl.SSLContext:
    """The TLS context of outside probes: any certificate, as an attacker's client accepts it."""
    return _UNVERIFIED


def basic_auth(user: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Target(ABC):  # noqa: B024 — a base with shared state; engines add their own probes
    """A store as checks see it. Engines subclass it with cached probes and an inside ``session``
    (a cached property, closed by :meth:`close`)."""

    default_port: ClassVar[int] = 0

    def __init__(self, store: Store, *, timeout: float = 5.0) -> None:
        self.store = store
        self.timeout = timeout

    @property
    def host(self) -> str:
        return self.store.host or "localhost"

    @property
    def port(self) -> int:
        return self.store.port or self.default_port

    def talk(self, exchange: Callable[[socket.socket], R]) -> R:
        """Run a raw, unauthenticated exchange on a fresh TCP connection, every step bounded by the
        timeout and the whole exchange by it too (a peer dripping bytes cannot stretch it); a silent or
        closed port becomes :class:`StoreUnreachable`."""
        try:
            with deadline(self.store, self.timeout, "exchange"), \
                    socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                sock.settimeout(self.timeout)
                return exchange(sock)
        except StoreUnreachable:
            raise
        except TimeoutError as exc:
            raise StoreUnreachable(self.store.name, f"no answer from {self.host}:{self.port} within "
                                   f"{self.timeout:g} s") from exc
        except ssl.SSLError as exc:
            raise ProtocolError(self.store.name, "the TLS handshake failed") from exc
        except OSError as exc:
            raise StoreUnreachable(self.store.name, f"cannot connect to {self.host}:{self.port} "
                                   f"({type(exc).__name__})") from exc

    def read_exact(self, sock: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ProtocolError(self.store.name, "the server closed the connection mid-handshake")
            data += chunk
        return data

    @cached_property
    def speaks_tls(self) -> bool:
        """Whether the port completes a TLS handshake (certificate not verified: an attacker's view)."""

        def handshake(sock: socket.socket) -> bool:
            try:
                with _UNVERIFIED.wrap_socket(sock, server_hostname=self.host):
                    return True
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                return False

        return self.talk(handshake)

    def http(self, method: str, path: str, headers: dict[str, str] | None = None,
             limit: int = 1 << 20, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
        """One unauthenticated-unless-``headers``-say-so HTTP request in whatever the port speaks
        (HTTPS when it completes a TLS handshake; the certificate is checked only with a ``context``
        that says so — inside requests carrying credentials pass the store's); status and at most
        ``limit`` bytes of body."""
        status, _, body = self.http_answer(method, path, headers, limit, context)
        return status, body

    def http_answer(self, method: str, path: str, headers: dict[str, str] | None = None,
                    limit: int = 1 << 20, context: ssl.SSLContext | None = None
                    ) -> tuple[int, dict[str, str], bytes]:
        """:meth:`http` with the answer's headers too (names lower-cased; discovery tells engines
        apart by ``Server`` and ``WWW-Authenticate``)."""
        import http.client

        conn: http.client.HTTPConnection
        if self.speaks_tls:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=context or _UNVERIFIED)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            with deadline(self.store, self.timeout, "HTTP answer"):
                conn.request(method, path, headers={"User-Agent": "piiguard", **(headers or {})})
                response = conn.getresponse()
                answer = {k.lower(): v for k, v in response.getheaders()}
                return response.status, answer, response.read(limit)
        except StoreUnreachable:
            raise
        except TimeoutError as exc:
            raise StoreUnreachable(self.store.name, f"no HTTP answer from {self.host}:{self.port} within "
                                   f"{self.timeout:g} s") from exc
        except (http.client.HTTPException, ssl.SSLError) as exc:
            raise ProtocolError(self.store.name, f"the server did not answer as HTTP does ({type(exc).__name__})"
                                ) from exc
        except OSError as exc:
            raise StoreUnreachable(self.store.name, f"cannot connect to {self.host}:{self.port} "
                                   f"({type(exc).__name__})") from exc
        finally:
            conn.close()

    def close(self) -> None:
        """Release the inside session, if a check opened one."""
        session = self.__dict__.get("session")
        if session is not None:
            session.close()


T = TypeVar("T", bound=Target)


class Check(ABC, Generic[T]):
    """One protocol of one engine. Subclasses set the class attributes and implement :meth:`run`."""

    engine: ClassVar[str]  # "*": every engine
    severity: ClassVar[Severity]
    vantage: ClassVar[Vantage]
    anchors: ClassVar[tuple[str, ...]] = ()  # CIS control, nuclei template, nmap script
    # watch runs cheap outside probes every few seconds; costly ones (password guessing, which also
    # loads the server) run with the slower inside audits.
    frequent: ClassVar[bool] = True
    # A failure means anyone who reaches the port gets in: it opens an exposure window in watch.
    exposes: ClassVar[bool] = False
    # It logs in with passwords from a list (a guess): discovery runs it on a store nobody registered
    # only when ``discovery.guess`` allows. Connecting as an anonymous client does is not guessing.
    guesses: ClassVar[bool] = False

    @abstractmethod
    def run(self, target: T) -> Outcome:
        """Pass or fail with evidence (settings and behaviour, never data values)."""

    @classmethod
    def applies(cls, store: Store) -> bool:
        """Whether the check says anything about this store (e.g. it needs configuration it lacks)."""
        return True

    @classmethod
    def title(cls) -> str:
        return (inspect.getdoc(cls) or "").splitlines()[0]

    @classmethod
    def doc(cls) -> str:
        return inspect.getdoc(cls) or ""


checks: Registry[type[Check[Any]]] = Registry("check", Check)
targets: Registry[type[Target]] = Registry("check target", Target)
