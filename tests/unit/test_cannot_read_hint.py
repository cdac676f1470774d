"""The "cannot read a whole collection" hint names every engine that can, also through the Python API
where no other connector has been imported yet."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from piiguard import plugins
from piiguard.connectors.base import connectors

PROGRAM = textwrap.dedent("""
    from piiguard.connectors.base import Connector
    from piiguard.errors import UsageError
    from piiguard.model import Store

    class Partial(Connector):  # a third-party connector without the whole-collection reader
        def open(self): pass
        def close(self): pass
        def collections(self): return []
        def sample(self, collection, n): raise NotImplementedError
        def batches(self, collection, batch_rows): raise NotImplementedError

    try:
        Partial(Store("p", "partial")).columns(None)
    except UsageError as exc:
        print(exc.hint)
""")


def test_the_hint_lists_every_engine_that_reads_whole() -> None:
    run = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True)
    plugins.load()
    able = sorted(n for n in connectors.names() if connectors.get(n).reads_whole())
    assert {"postgres", "files", "redis", "mongodb"} <= set(able)
    assert run.stdout.strip() == f"engines read whole: {', '.join(able)}"
