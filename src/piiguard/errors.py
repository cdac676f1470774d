"""The whole exception tree. Each class carries the exit code the CLI uses.

::

    PiiguardError (1)
    ├── UsageError (2)            bad command-line input
    │   └── FileRefused (2)       a path piiguard would write exists or is a link; a key file is too open
    ├── ConfigError (2)           piiguard.yaml or a store URL is wrong; lists every problem with its path
    ├── PluginError (1)           a registry refused a plugin (duplicate name, wrong base class)
    ├── CatalogError (1)          the catalog file cannot be opened or migrated, is not piiguard's, or is full
    ├── FileError (1)             a file with people's data could not be written (disk full, permissions)
    ├── CopyRefused (3)           a copy's target fails a blocking check (and no risk was accepted)
    ├── DeliveryFailed (1)        an alert sink did not receive an alert (it stays queued for retry)
    └── StoreError (1)            a store failed; names the store (and collection), carries a hint
        ├── StoreUnreachable      connection refused, DNS, timeout
        ├── AuthenticationFailed  wrong or missing credentials
        ├── PermissionDenied      connected, but lacks a privilege on a collection
        └── CollectionError       one collection could not be read (bad encoding, malformed file …)

Messages never contain a data value: they name the store, collection and field, and say what to do
next. Driver exceptions are wrapped with ``raise … from exc`` but their text is *not* copied into the
message, because driver errors can quote row data (e.g. a constraint violation's key).
"""

from __future__ import annotations

from collections.abc import Sequence


class PiiguardError(Exception):
    """Root of every error piiguard raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} (hint: {self.hint})"


class UsageError(PiiguardError):
    exit_code = 2


class ConfigError(PiiguardError):
    """Configuration problems, all of them at once, each as ``path: problem``."""

    exit_code = 2

    def __init__(self, problems: Sequence[str], *, hint: str | None = None) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems), hint=hint)


class PluginError(PiiguardError):
    pass


class CopyRefused(PiiguardError):
    exit_code = 3


class CatalogError(PiiguardError):
    pass


class DeliveryFailed(PiiguardError):
    """An alert could not be delivered; the message names the sinks (their ids hold no secret)."""


class FileRefused(UsageError):
    """A file was not written because of the path given (it exists, is a symbolic link, is not a
    folder), or a key file was not read (too open, missing, not a file). Names the path, never content."""


class FileError(PiiguardError):
    """A file with people's data could not be written (the disk is full, permission denied); nothing
    half-written is left."""


class StoreError(PiiguardError):
    """A store (or one of its collections) could not be read. Other stores go on."""

    def __init__(
        self, store: str, message: str, *, collection: str | None = None, hint: str | None = None
    ) -> None:
        where = store if collection is None else f"{store}.{collection}"
        super().__init__(f"{where}: {message}", hint=hint)
        self.detail = message  # without the store and collection prefix
        self.store = store
        self.collection = collection


class StoreUnreachable(StoreError):
    pass


class AuthenticationFailed(StoreError):
    pass


class PermissionDenied(StoreError):
    pass


class CollectionError(StoreError):
    pass
