"""piiguard: find customer PII in data stores and keep their security protocols on.

The Python API is a few functions over the same library the CLI uses; none of them prints or exits.
"""

from __future__ import annotations

from piiguard.config import Config, load_config, store_from_url
from piiguard.errors import PiiguardError
from piiguard.model import Classification, ScanMode, ScanResult, Store, StoreResult
from piiguard.scanner import scan

__all__ = [
    "Classification",
    "Config",
    "PiiguardError",
    "ScanMode",
    "ScanResult",
    "Store",
    "StoreResult",
    "load_config",
    "scan",
    "store_from_url",
]
