"""S3 protocol checks.

Outside checks send unsigned ``GET`` requests (a bucket listing with ``max-keys=1``; one byte of one
object, ``Range: bytes=0-0``) and signed ``ListBuckets`` with documented default key pairs —
nothing that writes. Which buckets: the store's bucket, or every bucket its credentials list (names
are not secrets; the probes themselves carry no credentials). Inside checks read each bucket's
policy, ACL and logging configuration with the store's credentials (``s3:GetBucketPolicy``,
``s3:GetBucketAcl``, ``s3:GetBucketLogging``). Tested against versitygw; on servers that do not
implement bucket logging (versitygw, MinIO) ``s3.no-access-logging`` is not applicable and
says so instead of guessing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from piiguard.checks.base import (
    Check,
    Outcome,
    ProtocolError,
    Target,
    Unsupported,
    checks,
    failed,
    not_applicable,
    passed,
    targets,
)
from piiguard.checks.cached import cached_property
from piiguard.engines.s3 import client
from piiguard.errors import AuthenticationFailed, StoreUnreachable
from piiguard.model import Severity, Vantage
from piiguard.registry import driver

if TYPE_CHECKING:
    import botocore.exceptions as botocore_exceptions
else:  # imported on first use: starting the CLI must not load every engine's driver
    botocore_exceptions = driver("botocore.exceptions")

# MinIO's documented default root login, and the example key pair from AWS's documentation.
DEFAULT_KEYS = (("minioadmin", "minioadmin"), ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"))
PUBLIC_GROUPS = ("http://acs.amazonaws.com/groups/global/AllUsers",
                 "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")


class S3Target(Target):
    default_port = 443

    @cached_property
    def session(self) -> Any:
        return client(self.store, self.timeout)

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            reply: dict[str, Any] = getattr(self.session, operation)(**kwargs)
            return reply
        except botocore_exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
                raise AuthenticationFailed(self.store.name, f"{operation} refused ({code})",
                                           hint="check the store's access key id and secret reference") from exc
            if code in ("NotImplemented", "NotImplementedError"):
                raise Unsupported(self.store.name, f"the server does not implement {operation}") from exc
            raise
        except botocore_exceptions.BotoCoreError as exc:
            raise StoreUnreachable(self.store.name, f"{operation} failed ({type(exc).__name__})") from exc

    @cached_property
    def buckets(self) -> list[str]:
        if self.store.database:
            return [self.store.database]
        return [b["Name"] for b in self.call("list_buckets").get("Buckets", [])]

    def first_key(self, bucket: str) -> str | None:
        contents = self.call("list_objects_v2", Bucket=bucket, MaxKeys=1).get("Contents", [])
        return str(contents[0]["Key"]) if contents else None

    def unsigned(self, path: str, headers: dict[str, str] | None = None) -> int:
        """The status of an unsigned GET when it grants (200, 206) or refuses (401, 403, 404 — some
        services hide what an anonymous caller may not see); anything else (a 500, a redirect to
        another region) decides nothing: the store is unreachable for the checks, never a pass."""
        status = self.http("GET", path, headers, limit=0)[0]
        if status not in (200, 206, 401, 403, 404):
            raise ProtocolError(self.store.name, f"an unsigned GET was answered HTTP {status}: neither granted "
                                                 "nor refused", hint="check the endpoint, its region and port")
        return status

    def close(self) -> None:
        self.__dict__.pop("session", None)  # boto3 clients hold no connection worth closing here


class S3Check(Check[S3Target]):
    engine = "s3"


@checks.register("s3.anonymous-list")
class AnonymousList(S3Check):
    """A bucket can be listed without credentials.

    Risk: anyone who knows or guesses the bucket's name enumerates every object in it — the first
    step of nearly every public-bucket leak.
    Seen from outside: an unsigned ``GET /bucket?list-type=2`` answered 200.
    Fix: remove ``Principal: *`` from the bucket policy and public ACL grants; turn on Block Public
    Access where the service has it.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    anchors = ("nuclei: s3-public-read",)

    def run(self, target: S3Target) -> Outcome:
        listed = [b for b in target.buckets if target.unsigned(f"/{quote(b)}?list-type=2&max-keys=1") == 200]
        if listed:
            return failed(f"{len(listed)} bucket(s) listed without credentials: {', '.join(listed[:5])}")
        return passed(f"{len(target.buckets)} bucket(s) refuse anonymous listing")


@checks.register("s3.anonymous-get")
class AnonymousGet(S3Check):
    """Objects can be read without credentials.

    Risk: every object whose key is known or listed is downloadable by anyone.
    Seen from outside: an unsigned ``GET`` of one byte of an object answered 200/206.
    Fix: no public-read policy statement or ACL grant; serve public content from a separate bucket.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True

    def run(self, target: S3Target) -> Outcome:
        tried, readable = 0, []
        for bucket in target.buckets:
            key = target.first_key(bucket)
            if key is None:
                continue
            tried += 1
            if target.unsigned(f"/{quote(bucket)}/{quote(key)}", {"Range": "bytes=0-0"}) in (200, 206):
                readable.append(bucket)
        if readable:
            return failed(f"objects in {len(readable)} bucket(s) read without credentials: {', '.join(readable[:5])}")
        return passed(f"an anonymous read of one object was refused in each of {tried} non-empty bucket(s)")


@checks.register("s3.public-policy")
class PublicPolicy(S3Check):
    """A bucket policy or ACL grants access to everyone.

    Risk: ``"Principal": "*"`` without a condition (or an ACL grant to AllUsers /
    AuthenticatedUsers) opens the bucket to the internet, whatever else is configured.
    Fix: name the principals that need access; delete public statements and grants.
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE

    def run(self, target: S3Target) -> Outcome:
        public = []
        for bucket in target.buckets:
            statements = public_statements(policy_of(target, bucket))
            grants = [g for g in target.call("get_bucket_acl", Bucket=bucket).get("Grants", [])
                      if g.get("Grantee", {}).get("URI") in PUBLIC_GROUPS]
            if statements or grants:
                public.append(f"{bucket} ({len(statements)} public statement(s), {len(grants)} public grant(s))")
        if public:
            return failed("; ".join(public[:5]))
        return passed(f"no public statement or grant on {len(target.buckets)} bucket(s)")


@checks.register("s3.no-access-logging")
class NoAccessLogging(S3Check):
    """Server access logging is off for a bucket.

    Risk: after an exposure nobody can say which objects were read, by whom.
    Fix: ``PutBucketLogging`` to a separate log bucket. Servers without the bucket logging API
    (versitygw, MinIO) log at the server (``--access-log``, audit webhooks): there the check is
    not applicable and says so.
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE

    def run(self, target: S3Target) -> Outcome:
        off = []
        for bucket in target.buckets:
            try:
                reply = target.call("get_bucket_logging", Bucket=bucket)
            except Unsupported:
                return not_applicable("the server does not implement bucket logging (GetBucketLogging); "
                                      "its access log, if any, is server-side")
            if not reply.get("LoggingEnabled"):
                off.append(bucket)
        if off:
            return failed(f"access logging is off for {len(off)} bucket(s): {', '.join(off[:5])}")
        return passed(f"access logging is on for {len(target.buckets)} bucket(s)")


@checks.register("s3.default-credentials")
class DefaultCredentials(S3Check):
    """A documented default access key pair is accepted.

    Risk: ``minioadmin:minioadmin`` is MinIO's root login until someone changes it; scanners try it
    first.
    Fix: set the root credentials (MinIO ``MINIO_ROOT_USER`` / ``MINIO_ROOT_PASSWORD``) and use
    per-application keys.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    frequent = False
    guesses = True
    anchors = ("nuclei: minio-default-login",)

    def run(self, target: S3Target) -> Outcome:
        accepted = []
        for access, secret in DEFAULT_KEYS:
            try:
                client(target.store, target.timeout, access_key=access, secret_key=secret).list_buckets()
                accepted.append(access)
            except botocore_exceptions.ClientError:
                continue
            except botocore_exceptions.BotoCoreError as exc:
                raise StoreUnreachable(target.store.name, f"ListBuckets failed ({type(exc).__name__})") from exc
        if accepted:
            return failed(f"the default key pair for {', '.join(accepted)} was accepted")
        return passed(f"{len(DEFAULT_KEYS)} default key pairs refused")


def policy_of(target: S3Target, bucket: str) -> dict[str, Any]:
    try:
        return dict(json.loads(target.call("get_bucket_policy", Bucket=bucket)["Policy"]))
    except botocore_exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucketPolicy":
            return {}
        raise


def public_statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """Allow statements whose principal is everyone and that carry no condition."""
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    out = []
    for s in statements:
        principal = s.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS")))
        if s.get("Effect") == "Allow" and everyone and not s.get("Condition"):
            out.append(s)
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


targets.add("s3", S3Target)
