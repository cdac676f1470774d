"""Integration grants at their authorization servers: routing per provider, RFC 7009 revocation and
RFC 7662 confirmation, shared by the SQL and the document ``oauth-grants`` responders.

A grant row names its provider (``provider_column``: ``alexa``, ``google``, ``ifttt``…); each provider
maps to its own authorization server (``providers:``), with its client credentials by reference. The
single-endpoint form (``revocation_endpoint`` and ``client_id`` beside the other options) sends every
grant to one server, as before providers existed.

A 200 from a revocation endpoint does not prove anything was revoked (RFC 7009 §2.2 answers 200 for a
token the server does not know, too). Where the provider has an introspection endpoint, the token is posted there after
its revocation and ``"active": false`` confirms it; otherwise the revocation is counted as not
confirmed, and the result and the incident report say so, with the reason.

Calls are bounded by the responder's timeout and run ``parallel`` at a time. No token, secret or
server answer ever reaches an error or the output: only counts and provider names (names that are not
plain identifiers are shown as ``<provider #n>``).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from piiguard.engines.deadline import deadline
from piiguard.errors import StoreUnreachable
from piiguard.model import Store

# a provider name is a value read from the store: shown only when it looks like a name, never as data
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
MAX_ANSWER = 64 * 1024  # an introspection answer is a few hundred bytes; a hostile server's is cut


@dataclass(frozen=True)
class Provider:
    """One authorization server (an entry of ``providers:``, or the single-endpoint form)."""

    revocation_endpoint: str
    client_id: str
    client_secret_env: str = ""
    introspection_endpoint: str = ""
    token_type_hint: str = "refresh_token"

    def __post_init__(self) -> None:
        for name in ("revocation_endpoint", "introspection_endpoint"):
            url = getattr(self, name)
            if url and urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s) URL")
            if url and urllib.parse.urlsplit(url).password:
                raise ValueError(f"{name} must not carry credentials: use client_secret_env")
        if not self.client_id:
            raise ValueError("client_id must not be empty")


class Revoked(Enum):
    """What became of one grant's revocation."""

    REFUSED = "refused"  # the revocation endpoint did not accept it: not marked, retried next run
    CONFIRMED = "confirmed"  # accepted, and introspection answered active: false
    NO_INTROSPECTION = "no-introspection"  # accepted; the provider has no introspection endpoint
    NOT_CONFIRMED = "not-confirmed"  # accepted; introspection failed or said the token is still active:
    # not marked, retried next run (a grant marked relink-required while its token works is a door left open)

    @property
    def marked(self) -> bool:
        """Whether the grant is marked relink-required (and so not tried again)."""
        return self in (Revoked.CONFIRMED, Revoked.NO_INTROSPECTION)


NO_ANSWER = 0  # a refusal's status when the server gave none (unreachable, cut at the timeout, not HTTP)
CREDENTIALS = -1  # a 400 whose answer says invalid_client (RFC 6749 §5.2): counted with the 401s


@dataclass(frozen=True)
class Result:
    """One grant's outcome; for a refusal, the HTTP status (:data:`NO_ANSWER`, :data:`CREDENTIALS`)."""

    revoked: Revoked
    status: int = 200


@dataclass(frozen=True)
class Tally:
    """A run's grants by outcome, and the grants left alone because their provider has no mapping."""

    revoked: Mapping[Revoked, int]
    unmapped: Mapping[str, int]  # provider name (or <provider #n>) → grants
    refusals: Mapping[int, int] = field(default_factory=dict)  # HTTP status of a refusal → grants
    unanswered: Mapping[int, int] = field(default_factory=dict)  # introspection's status, where not 200 → grants

    @property
    def accepted(self) -> int:
        return sum(n for r, n in self.revoked.items() if r is not Revoked.REFUSED)

    @property
    def marked(self) -> int:
        return sum(n for r, n in self.revoked.items() if r.marked)

    def facts(self) -> dict[str, Any]:
        """For the timeline's ``responded`` entry (the report sums them)."""
        return {"confirmed": self.revoked.get(Revoked.CONFIRMED, 0),
                "no_introspection": self.revoked.get(Revoked.NO_INTROSPECTION, 0),
                "not_confirmed": self.revoked.get(Revoked.NOT_CONFIRMED, 0),
                "refused": self.revoked.get(Revoked.REFUSED, 0), "unmapped": dict(self.unmapped)}


def describe(facts: Mapping[str, Any]) -> str:
    """``3 confirmed by introspection, 2 not confirmed (2 without an introspection endpoint, 0 …)``."""
    unconfirmed = int(facts.get("no_introspection", 0)) + int(facts.get("not_confirmed", 0))
    text = (f"{int(facts.get('confirmed', 0)):,} confirmed by introspection, {unconfirmed:,} not confirmed "
            f"({int(facts.get('no_introspection', 0)):,} without an introspection endpoint, "
            f"{int(facts.get('not_confirmed', 0)):,} where introspection failed or said active)")
    unmapped = facts.get("unmapped") or {}
    if unmapped:
        text += "; not revoked, no provider mapping: " + ", ".join(
            f"{n:,} {name}" for name, n in sorted(unmapped.items()))
    return text


def refusal_text(refusals: Mapping[int, int]) -> tuple[str, bool]:
    """Why revocations were refused, by status (never a server's text or a ``Location``), and whether
    running again can help (not for a refused client or a redirect: the configuration must change)."""
    parts, retry = [], False
    for status, n in sorted(refusals.items()):
        if status in (401, CREDENTIALS):
            parts.append(f"{n:,} answered {'400 invalid_client' if status == CREDENTIALS else '401'}: the server "
                         "refused the client's credentials (check client_id and client_secret_env); running "
                         "again will not help")
        elif 300 <= status < 400:
            parts.append(f"{n:,} answered {status}, a redirect: not followed (the client secret is sent to the "
                         "configured endpoint only); point the endpoint at where the server now answers")
        elif status == NO_ANSWER:
            parts.append(f"{n:,} got no answer (unreachable or cut at the timeout)")
            retry = True
        else:
            parts.append(f"{n:,} answered {status}")
            retry = True
    return "; ".join(parts), retry


def shown(name: str, names: dict[str, str]) -> str:
    """A provider value as output may show it (``names`` numbers the odd ones consistently)."""
    if _PLAIN_NAME.fullmatch(name):
        return name
    return names.setdefault(name, f"<provider #{len(names) + 1}>")


class Router:
    """Which authorization server each grant goes to."""

    def __init__(self, options: Any) -> None:
        if options.providers:
            self.providers: Mapping[str, Provider] = options.providers
            self.by_provider = True
        else:
            self.providers = MappingProxyType({"": Provider(
                options.revocation_endpoint, options.client_id, options.client_secret_env,
                options.introspection_endpoint, options.token_type_hint)})
            self.by_provider = False

    def route(self, provider: Any) -> Provider | None:
        return self.providers.get(str(provider) if self.by_provider else "")

    def split(self, grants: list[tuple[Any, str, Any]]) -> tuple[list[tuple[Any, str, Provider]], dict[str, int]]:
        """Grants ``(row id, token, provider value)`` → the routed ones, and the unmapped count per name."""
        routed, unmapped, names = [], Counter[str](), dict[str, str]()
        for row, token, provider in grants:
            target = self.route(provider)
            if target is None:
                unmapped["<none>" if provider in (None, "") else shown(str(provider), names)] += 1
            else:
                routed.append((row, token, target))
        return routed, dict(unmapped)

    def where(self) -> str:
        """The servers, for a plan: ``https://a/revoke`` or ``alexa → https://…; google → …``."""
        if not self.by_provider:
            return self.providers[""].revocation_endpoint
        return "; ".join(f"{name} → {p.revocation_endpoint}" for name, p in sorted(self.providers.items()))


def _post(url: str, provider: Provider, token: str, timeout: float, store: Store,
          body_wanted: bool = True) -> tuple[int, bytes]:
    """One form POST; the whole exchange bounded by ``timeout`` (a server dripping its answer is cut)."""
    with deadline(store, timeout, "answer from the authorization server"):
        return _exchange(url, provider, token, timeout, body_wanted)


def _exchange(url: str, provider: Provider, token: str, timeout: float, body_wanted: bool) -> tuple[int, bytes]:
    secret = os.environ.get(provider.client_secret_env, "") if provider.client_secret_env else ""
    body = urllib.parse.urlencode({"token": token, "token_type_hint": provider.token_type_hint}).encode()
    auth = base64.b64encode(f"{urllib.parse.quote(provider.client_id)}:{urllib.parse.quote(secret)}".encode())
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
        "Authorization": f"Basic {auth.decode()}"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:  # http(s) only: checked at parse
            return int(response.status), response.read(MAX_ANSWER + 1) if body_wanted else b""
    except urllib.error.HTTPError as exc:  # a 3xx (never followed), 4xx or 5xx: its status, and a bounded body
        with exc:
            return int(exc.code), exc.read(MAX_ANSWER + 1) if exc.code == 400 else b""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are never followed: the request carries the client secret (HTTP Basic) and the token,
    and a redirect would send both wherever the ``Location`` says. The 3xx comes back as it is."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


# replaces the default redirect handler, and no proxy from the environment: a proxy would receive the
# client secret and the token, and could answer the introspection itself
_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def _invalid_client(answer: bytes) -> bool:
    try:
        parsed = json.loads(answer) if len(answer) <= MAX_ANSWER else None
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("error") == "invalid_client"


def revoke(provider: Provider, token: str, timeout: float, store: Store) -> Result:
    """Revoke one token (RFC 7009), then confirm it where the provider offers introspection (RFC 7662)."""
    try:
        status, answer = _post(provider.revocation_endpoint, provider, token, timeout, store, body_wanted=False)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException, StoreUnreachable):
        # StoreUnreachable: the deadline cut it
        return Result(Revoked.REFUSED, NO_ANSWER)
    if status != 200:  # RFC 7009 §2.2: 200 also for an already-invalid token
        return Result(Revoked.REFUSED, CREDENTIALS if status == 400 and _invalid_client(answer) else status)
    if not provider.introspection_endpoint:
        return Result(Revoked.NO_INTROSPECTION)
    try:
        status, answer = _post(provider.introspection_endpoint, provider, token, timeout, store)
        if status != 200:  # a 3xx (never followed), 4xx or 5xx: its status says why nothing is confirmed
            return Result(Revoked.NOT_CONFIRMED, CREDENTIALS if status == 400 and _invalid_client(answer) else status)
        parsed = json.loads(answer) if len(answer) <= MAX_ANSWER else None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException, StoreUnreachable):
        return Result(Revoked.NOT_CONFIRMED, NO_ANSWER)
    # RFC 7662 §2.2: "active" is REQUIRED and boolean; only an explicit false confirms
    if isinstance(parsed, dict) and parsed.get("active") is False:
        return Result(Revoked.CONFIRMED)
    return Result(Revoked.NOT_CONFIRMED)  # 200: still active (or no boolean "active")


def check_routing(options: Any) -> None:
    """The grants options name one server (``revocation_endpoint`` + ``client_id``) or a server per
    provider (``provider_column``/``provider_field`` + ``providers``), not both and not neither."""
    column = getattr(options, "provider_column", None) or getattr(options, "provider_field", "")
    key = "provider_column" if hasattr(options, "provider_column") else "provider_field"
    single = [k for k in ("revocation_endpoint", "client_id", "client_secret_env", "introspection_endpoint")
              if getattr(options, k)]
    if options.parallel < 1 or options.parallel > 64:
        raise ValueError("parallel must be 1 to 64")
    if options.providers:
        if single:
            raise ValueError(f"give either providers (one server per provider) or {', '.join(single)} (one server "
                             f"for every grant), not both: move {', '.join(single)} under providers: "
                             f"{{<provider value>: {{…}}}}")
        if not column:
            raise ValueError(f"providers needs {key}: the column or field that names each grant's provider")
        return
    if column:
        raise ValueError(f"{key} needs providers: {{<provider value>: {{revocation_endpoint: …, client_id: …}}}}")
    if not (options.revocation_endpoint and options.client_id):
        raise ValueError("give revocation_endpoint and client_id (one authorization server), or "
                         f"{key} and providers (one per provider)")
    Provider(options.revocation_endpoint, options.client_id, options.client_secret_env,
             options.introspection_endpoint, options.token_type_hint)  # the same URL checks


def run(grants: list[tuple[Any, str, Any]], router: Router, parallel: int, timeout: float, store: Store,
        mark: Callable[[list[Any]], None], progress: Callable[[int], None], batch: int = 500) -> Tally:
    """Revoke each routed grant at its provider, ``parallel`` at a time; ``mark(row ids)`` is called for
    each batch's revoked ones — confirmed, or accepted where the provider has no introspection — so a
    stopped run keeps what it did. A refused grant, or one whose token introspection still calls active,
    is left unmarked and tried again next run. Unmapped grants are only counted. ``progress`` counts grants."""
    from concurrent.futures import ThreadPoolExecutor

    routed, unmapped = router.split(grants)
    counts, refusals, unanswered = Counter[Revoked](), Counter[int](), Counter[int]()
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        for i in range(0, len(routed), batch):
            chunk = routed[i:i + batch]
            outcomes = list(pool.map(lambda g: revoke(g[2], g[1], timeout, store), chunk))
            counts.update(r.revoked for r in outcomes)
            refusals.update(r.status for r in outcomes if r.revoked is Revoked.REFUSED)
            unanswered.update(r.status for r in outcomes if r.revoked is Revoked.NOT_CONFIRMED and r.status != 200)
            done = [g[0] for g, r in zip(chunk, outcomes, strict=True) if r.revoked.marked]
            if done:
                mark(done)
            progress(len(chunk))
    return Tally(MappingProxyType(dict(counts)), MappingProxyType(unmapped), MappingProxyType(dict(refusals)),
                 MappingProxyType(dict(unanswered)))
