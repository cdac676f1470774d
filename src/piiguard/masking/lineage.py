"""OpenLineage for copies: one ``COMPLETE`` run event per copy, with the column-lineage facet, so
lineage tools (Marquez, DataHub, OpenMetadata) see where masked customer data went.

Each target column names its source column and one transformation: ``DIRECT/IDENTITY`` for a kept
field, ``DIRECT/TRANSFORMATION`` with ``masking: true`` for a masked one (the description names the
masker). Dropped fields do not appear. Datasets are named by store and collection; their namespaces
are ``piiguard://STORE`` (a store's address may carry a user name, which lineage tools need not see).
The destination is a file (``file:PATH``, appended as JSON lines) or an HTTP(S) endpoint.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import column_lineage_dataset as cl
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport

from piiguard.errors import UsageError

PRODUCER = "https://github.com/piiguard/piiguard"
NAMESPACE = "piiguard"


def transport(destination: str) -> Any:
    if destination.startswith("file:"):
        return FileTransport(FileConfig(log_file_path=destination[len("file:"):], append=True))
    if destination.startswith(("http://", "https://")):
        return HttpTransport(HttpConfig(url=destination))
    raise UsageError(f"unknown lineage destination {destination!r}", hint="file:PATH or an http(s):// URL")


def copy_event(record: dict[str, Any]) -> RunEvent:
    """The run event of a registered copy (a catalog row)."""
    source_ns, target_ns = f"piiguard://{record['source_store']}", f"piiguard://{record['target_store']}"
    fields = {}
    for name, t in record["transforms"].items():
        if t["masker"] == "drop":
            continue
        masked = t["masker"] != "keep"
        transformation = cl.Transformation(type="DIRECT", subtype="TRANSFORMATION" if masked else "IDENTITY",
                                           description=f"piiguard masker {t['masker']}", masking=masked)
        fields[name] = cl.Fields(inputFields=[cl.InputField(namespace=source_ns, name=record["source_collection"],
                                                            field=name, transformations=[transformation])])
    output = OutputDataset(namespace=target_ns, name=record["target_collection"],
                           facets={"columnLineage": cl.ColumnLineageDatasetFacet(fields=fields)})
    run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"piiguard-copy-{record['id']}-{record['created']}"))
    return RunEvent(eventType=RunState.COMPLETE, eventTime=datetime.now(UTC).isoformat(), run=Run(runId=run_id),
                    job=Job(namespace=NAMESPACE, name=f"copy.{record['id']}"), producer=PRODUCER,
                    inputs=[InputDataset(namespace=source_ns, name=record["source_collection"])], outputs=[output])


def emit(record: dict[str, Any], destination: str) -> None:
    OpenLineageClient(transport=transport(destination)).emit(copy_event(record))
