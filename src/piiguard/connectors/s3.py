"""S3-compatible object storage (AWS S3, MinIO, Ceph RGW, versitygw — the tests run versitygw).

Objects are read with Arrow's own S3 filesystem and the ``files`` connector's readers, so a bucket
is scanned exactly like a folder of exports, and read whole (scope, copy) like one: every object
whose key ends in a known suffix (CSV, TSV, JSON Lines, JSON, Parquet; CSV and JSON also compressed
as ``.gz`` or ``.zst``) is a collection named ``bucket/key``. The store's ``database`` is the bucket;
without one, every bucket the credentials can list is read.

The store's ``user`` is the access key id (an identifier) and its password reference the secret
key (``AWS_SECRET_ACCESS_KEY`` by default). Options: ``tls`` (default true), ``cafile``, ``region``
(default ``us-east-1``). Bucket configuration (policies, logging) is read by the s3 checks with
``boto3`` (:func:`client`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from piiguard.config import option_flag
from piiguard.connectors.base import connectors
from piiguard.connectors.files import Files, known_file
from piiguard.engines import tls
from piiguard.engines.deadline import bounded
from piiguard.engines.s3 import client, endpoint, secret  # noqa: F401 — re-exported: checks and writers use them
from piiguard.errors import AuthenticationFailed, StoreError, StoreUnreachable
from piiguard.model import CollectionInfo
from piiguard.registry import driver

MAX_OBJECTS = 100_000  # objects listed per bucket at most: a listing past it is a problem, not a scan

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as fs
else:  # imported on first use: starting the CLI must not load every engine's driver
    pa = driver("pyarrow")
    fs = driver("pyarrow.fs")


@connectors.register("s3")
class S3(Files):
    """Objects in S3-compatible buckets, read like files (CSV, TSV, JSON Lines, Parquet)."""

    privileges = "s3:ListBucket and s3:GetObject on the buckets to scan (s3:ListAllMyBuckets without a bucket)"

    def open(self) -> None:
        s = self.store
        self._reset()
        tls.enforce(s)
        self.fs = fs.S3FileSystem(
            access_key=s.user, secret_key=secret(s), region=s.options.get("region", "us-east-1"),
            endpoint_override=f"{s.host or 'localhost'}:{s.port or 443}",
            scheme="https" if option_flag(s, "tls", True) else "http",
            connect_timeout=self.timeout, request_timeout=self.timeout,
            retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1), tls_ca_file_path=tls.ca_file(s))

        def listing() -> list[str]:
            buckets = [s.database] if s.database else [
                i.path for i in self.fs.get_file_info(fs.FileSelector("", recursive=False))]
            for bucket in buckets:
                self.fs.get_file_info(bucket)
            return buckets

        try:
            # Arrow's S3 client lives in C++, out of reach of socket deadlines: bound the step from outside
            self.buckets = bounded(s, self.timeout, listing, "S3 listing")
        except (OSError, ValueError, RuntimeError) as exc:  # Arrow raises OSError, or others on a non-S3 answer
            text = str(exc)
            if "AccessDenied" in text or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
                raise AuthenticationFailed(s.name, "the endpoint refused the credentials",
                                           hint="check the store's user (access key id) and secret reference"
                                           ) from exc
            raise StoreUnreachable(s.name, f"cannot list {endpoint(s)}", hint="check host, port and tls") from exc

    def collections(self) -> list[CollectionInfo]:
        s = self.store

        def listing(bucket: str) -> list[Any]:
            return list(self.fs.get_file_info(fs.FileSelector(bucket, recursive=True)))

        out = []
        for bucket in self.buckets:
            try:
                # Arrow pages through the listing in C++: a peer whose listing never ends (IsTruncated
                # forever) is cut from outside, like the first listing
                infos = bounded(s, self.timeout, functools.partial(listing, bucket), f"S3 listing of {bucket}")
            except OSError as exc:
                raise StoreUnreachable(s.name, f"cannot list {bucket} at {endpoint(s)} ({type(exc).__name__})",
                                       hint="check host, port and tls: the answer was not an S3 listing") from exc
            if len(infos) > MAX_OBJECTS:
                raise StoreError(s.name, f"the bucket lists more than {MAX_OBJECTS:,} objects: not scanned",
                                 collection=bucket, hint="name a smaller bucket in the store's address")
            out += [self._info(i.path) for i in sorted(infos, key=lambda i: i.path)
                    if i.type == fs.FileType.File and known_file(i.path)]
        return out

    def _source(self, collection: CollectionInfo, *, seekable: bool = False) -> Any:
        if seekable:
            return self.fs.open_input_file(collection.name)
        # the raw bytes: the files readers decompress (Arrow would also guess from the suffix: twice)
        return self.fs.open_input_stream(collection.name, compression=None)

    def _size(self, collection: CollectionInfo) -> int:
        return int(self.fs.get_file_info(collection.name).size or 0)

    def _head(self, collection: CollectionInfo) -> bytes:
        with self.fs.open_input_file(collection.name) as f:
            data: pa.Buffer = f.read_at(min(1 << 16, self._size(collection)), 0)
            return bytes(data)

    def _version(self, collection: CollectionInfo) -> tuple[int, int] | None:
        """Size and modification time of the object, to tell whether it was replaced while it was read."""
        try:
            info = self.fs.get_file_info(collection.name)
        except OSError:
            return None
        return int(info.size or 0), int(info.mtime_ns or 0)

    def distinct(self, collection: CollectionInfo, field: str) -> None:
        return None  # DuckDB reads local files only here; the subject estimate uses the scanned values
