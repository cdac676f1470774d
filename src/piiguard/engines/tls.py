"""TLS a store's connection uses, and refusing a connection that policy says must be verified.

Each engine names its TLS settings as its own clients do (store ``options:`` or URL parameters):

============  ==========================================================================================
postgres      ``sslmode`` (disable, allow, prefer — the default —, require, verify-ca, verify-full),
              ``sslrootcert`` (CA file)
mysql         ``ssl`` (true/false), ``ssl_ca`` (CA file; implies ssl), ``ssl_verify`` (default true
              with ssl: the certificate chain and the host name are checked)
redis         ``rediss://`` (or ``tls: true``), ``ssl_ca_certs`` (CA file), ``ssl_cert_reqs``
              (required — the default — or none)
clickhouse    ``secure`` (true/false; HTTPS and the native TLS port), ``ca_certs``, ``verify`` (default true)
opensearch    ``tls`` (default true), ``verify_certs`` (default true with tls), ``cafile`` (or ``ca_certs``)
mongodb       ``tls`` (default false), ``cafile`` (or ``tlsCAFile``), ``tlsAllowInvalidCertificates``
s3            ``tls`` (default true), ``verify`` (default true), ``cafile``
============  ==========================================================================================

:func:`level` says what a store's configuration gives: :attr:`TlsLevel.NONE` (plain text possible),
:attr:`TlsLevel.ENCRYPTED` (TLS without checking whose certificate it is) or
:attr:`TlsLevel.VERIFIED` (certificate chain *and* host name checked: what a man in the middle
cannot fake). A store whose ``require_tls`` (set in the store, or by policy ``require_tls`` rules
matched by tag) is above its level is refused by :func:`enforce` before a byte is sent — its
credentials never travel in plain text.
"""

from __future__ import annotations

import enum
import functools
import os
import ssl

from piiguard.errors import ConfigError, StoreError
from piiguard.model import Store


class TlsLevel(enum.Enum):
    NONE = "none"
    ENCRYPTED = "encrypted"
    VERIFIED = "verified"

    @property
    def rank(self) -> int:
        return list(TlsLevel).index(self)


REQUIRE_LEVELS = ("encrypted", "verified")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Store options per engine, added to the configuration's known keys (piiguard.config.OPTION_KEYS).
OPTION_KEYS: dict[str, set[str]] = {
    "postgres": {"sslmode", "sslrootcert"},
    "mysql": {"ssl", "ssl_ca", "ssl_verify"},
    "redis": {"tls", "ssl_ca_certs", "ssl_cert_reqs"},
    "clickhouse": {"secure", "ca_certs", "verify"},
    "opensearch": {"tls", "verify_certs", "cafile", "ca_certs"},
    "mongodb": {"tls", "cafile", "tlsCAFile", "tlsAllowInvalidCertificates"},
    "s3": {"tls", "verify", "cafile"},
}
BOOL_KEYS = {"tls", "ssl", "ssl_verify", "secure", "verify", "verify_certs", "tlsAllowInvalidCertificates"}
CHOICES = {"sslmode": SSLMODES, "ssl_cert_reqs": ("required", "none")}
PLAIN_TLS_DEFAULT = {"opensearch": True, "s3": True}  # engines whose clients speak TLS unless told not to


class TlsRefused(StoreError):
    """Policy requires verified (or encrypted) TLS and the store's connection does not give it."""


def flag(store: Store, key: str, default: bool) -> bool:
    value = store.options.get(key)
    return default if value is None else value.lower() == "true"


CA_KEYS = ("sslrootcert", "ssl_ca", "ssl_ca_certs", "ca_certs", "cafile", "tlsCAFile")  # the CA file options


def ca_file(store: Store) -> str | None:
    """The CA bundle the store's connection verifies against (None: the system's). A file that does not
    exist or cannot be read is a configuration error naming the option and the path, before any driver
    turns it into one of its own."""
    for key in CA_KEYS:
        path = store.options.get(key)
        if path:
            problem = ca_problem(path)
            if problem:
                raise ConfigError([f"stores.{store.name}.options.{key}: the CA file {path} {problem}"],
                                  hint="check the path in the store's TLS options (`piiguard validate` "
                                       "lists every such file)")
            return path
    return None


def ca_problem(path: str) -> str | None:
    """Why a CA file cannot be used (``does not exist``, ``is not a file``, ``cannot be read``), or None."""
    if not os.path.exists(path):
        return "does not exist"
    if not os.path.isfile(path):
        return "is not a file"
    if not os.access(path, os.R_OK):
        return "cannot be read"
    return None


def level(store: Store) -> TlsLevel:
    """What the store's configured connection guarantees."""
    o, e = store.options, store.engine
    if e == "postgres":
        mode = o.get("sslmode", "prefer")
        return TlsLevel.VERIFIED if mode == "verify-full" else TlsLevel.ENCRYPTED if mode in (
            "require", "verify-ca") else TlsLevel.NONE
    if e == "mysql":
        on = flag(store, "ssl", False) or "ssl_ca" in o
        return _level(on, on and flag(store, "ssl_verify", True))
    if e == "redis":
        on = flag(store, "tls", False)
        return _level(on, o.get("ssl_cert_reqs", "required") == "required")
    if e == "clickhouse":
        return _level(flag(store, "secure", False), flag(store, "verify", True))
    if e == "opensearch":
        on = flag(store, "tls", True)
        return _level(on, flag(store, "verify_certs", on))
    if e == "mongodb":
        return _level(flag(store, "tls", False), not flag(store, "tlsAllowInvalidCertificates", False))
    if e == "s3":
        return _level(flag(store, "tls", True), flag(store, "verify", True))
    return TlsLevel.NONE  # files, sqlite: no network connection to protect


def _level(on: bool, verify: bool) -> TlsLevel:
    return TlsLevel.NONE if not on else TlsLevel.VERIFIED if verify else TlsLevel.ENCRYPTED


def describe(store: Store) -> str:
    """The TLS settings, as the configuration names them (safe to print: paths and modes only)."""
    keys = sorted(OPTION_KEYS.get(store.engine, set()) & set(store.options))
    shown = ", ".join(f"{k}={store.options[k]}" for k in keys) or "no TLS options"
    return f"{shown} (TLS: {level(store).value})"


def enforce(store: Store) -> None:
    """Refuse before connecting when the store's ``require_tls`` is above what its settings give (every
    engine calls this first, so a CA file option naming a missing file is said here too)."""
    ca_file(store)
    if not store.require_tls:
        return
    need = TlsLevel(store.require_tls)
    if level(store).rank < need.rank:
        raise TlsRefused(store.name, f"policy requires {need.value} TLS and the connection is configured with "
                                     f"{describe(store)}; not connecting",
                         hint=_fix(store.engine))


def _fix(engine: str) -> str:
    return {
        "postgres": "set sslmode=verify-full and sslrootcert=CA file",
        "mysql": "set ssl_ca=CA file (ssl_verify stays true)",
        "redis": "use rediss:// with ssl_ca_certs=CA file",
        "clickhouse": "set secure=true and ca_certs=CA file",
        "opensearch": "set tls=true, verify_certs=true and cafile",
        "mongodb": "set tls=true and tlsCAFile=CA file",
        "s3": "set tls=true, verify=true (and cafile for a private CA)",
    }.get(engine, "this engine has no TLS connection piiguard can verify")


def context(store: Store) -> ssl.SSLContext:
    """A client context for the store: verified against its CA (or the system's) unless its settings
    say not to verify. Shared between connections with the same settings: building one reads the CA
    bundle (~20 ms), the cost of a whole watch cycle."""
    cafile = ca_file(store)
    try:
        changed = os.stat(cafile).st_mtime_ns if cafile else 0  # a rotated CA file is read again
        return _context(cafile, level(store) is TlsLevel.VERIFIED, changed)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([f"stores.{store.name}: the CA file {cafile} cannot be read as certificates "
                           f"({type(exc).__name__})"], hint="check the path in the store's TLS options") from exc


@functools.cache
def _context(cafile: str | None, verified: bool, _changed: int) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    if not verified:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
