"""piiguard's own entries in a store's access trail: its checks, scans, scopes and evidence reads.

Evidence would otherwise list piiguard itself among the readers (MariaDB's audit log names every
``mysql.*`` table a check read; OpenSearch's, every search of the audit index). An entry is
**attributed to piiguard**, and left out of what the evidence lists, only when *both* hold:

- its user is the one piiguard connects to the store as (the store's ``user``, else the engine's
  default: ``root`` for MySQL/MariaDB, ``default`` for ClickHouse and Redis, ``PGUSER`` or the
  operating-system user for PostgreSQL); an entry whose trail does not name the user is never
  attributed;
- it came from an address piiguard connects from: the source address this host uses to reach the
  store (asked of the kernel, nothing is sent), or the local socket when piiguard uses one.

Where the trail also names the application (PostgreSQL's ``application_name``), it must be one
piiguard sets (``piiguard``, ``piiguard-respond``, ``piiguard-probe``, …).

Limits, said in every evidence note and report: someone using piiguard's own credentials *from
piiguard's own host* is indistinguishable from it and is left out too; ``--include-own`` lists
every entry. An outsider — another user, or piiguard's user from any other address — is never
left out. Behind a NAT or proxy the store sees another address: nothing is attributed then.
The raw artefact (log excerpt, audit events) always keeps every entry.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass

from piiguard.model import Store

DEFAULT_USERS = {"mysql": "root", "clickhouse": "default", "redis": "default"}
APPLICATION_PREFIX = "piiguard"  # see engines/postgres.py, responders.py, checks/postgres.py
LOCAL_SOCKET = "local socket"  # how the PostgreSQL collector names a session without an address


@dataclass(frozen=True)
class Identity:
    """How piiguard appears in a store's trail."""

    user: str | None
    addresses: frozenset[str]

    def matches(self, user: str | None, address: str | None, application: str | None = None) -> bool:
        """Whether an entry (its user, address and, when the trail has it, application name) is piiguard's."""
        if self.user is None or not user or user != self.user:
            return False
        if address is None or address.removeprefix("::ffff:") not in self.addresses:
            return False
        return application is None or application.startswith(APPLICATION_PREFIX)

    def describe(self) -> str:
        where = ", ".join(sorted(self.addresses)) or "no known address"
        return f"user {self.user or '(none)'} from {where}"


def identity(store: Store) -> Identity:
    """The user and addresses piiguard reaches ``store`` with (see the module's documentation)."""
    user = store.user or DEFAULT_USERS.get(store.engine)
    if user is None and store.engine == "postgres":
        user = os.environ.get("PGUSER") or getpass.getuser()
    host = store.host
    if store.engine == "postgres" and (not host or host.startswith("/")):
        return Identity(user, frozenset({LOCAL_SOCKET}))
    return Identity(user, frozenset(_source_addresses(host or "localhost", store.port or 0)))


def _source_addresses(host: str, port: int) -> set[str]:
    """The addresses this host sends from to reach ``host``: a UDP socket's connect() only asks the
    kernel for a route, no packet leaves."""
    out: set[str] = set()
    try:
        infos = socket.getaddrinfo(host, port or 9, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return out
    for family, kind, proto, _name, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as s:
                s.connect(sockaddr)
                out.add(str(s.getsockname()[0]))
        except OSError:
            continue
    return out
