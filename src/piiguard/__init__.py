"""piiguard: find customer PII in data stores and keep their security protocols on.

The Python API is a few functions over the same library the CLI uses; none of them prints or exits.
Names are imported on first use (``piiguard.scan`` loads the scanner), so ``import piiguard`` and the
CLI's start stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {
    "Config": "piiguard.config", "load_config": "piiguard.config", "store_from_url": "piiguard.config",
    "PiiguardError": "piiguard.errors", "scan": "piiguard.scanner",
    **{name: "piiguard.model" for name in ("Classification", "ScanMode", "ScanResult", "Store", "StoreResult")},
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'piiguard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
