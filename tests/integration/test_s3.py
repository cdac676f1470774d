"""S3 against a real S3-compatible server (versitygw 1.8, built from the Go module proxy): a private
bucket passes, each insecure variant fails exactly its check(s), objects are scanned like files, and a
public policy is contained and undone."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from built_servers import S3_ROOT_KEY, S3Server, start_versitygw, stop_versitygw
from helpers import assert_fails_exactly, engine_checks
from leak import Leaks

from piiguard.catalog import Catalog
from piiguard.checker import check_store
from piiguard.checks.s3 import public_statements
from piiguard.contain.service import Containor
from piiguard.model import Status
from piiguard.scanner import scan
from piiguard.watch.service import Watcher
from piiguard.watch.sinks import JsonLines

# versitygw has no bucket logging API: the check is not applicable and says why
UNDECIDABLE = {"s3.no-access-logging"}
PUBLIC_READ = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::exports/*"]},
    {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::exports"]},
]}
CSV = "".join(f"{i},customer{i}@example.com,+44 20 7946 {i % 10000:04d},SN-{i:08d}\n" for i in range(500))


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_versitygw()
    c = server.client()
    c.create_bucket(Bucket="exports")
    c.put_object(Bucket="exports", Key="2026/customers.csv", Body=("id,email,phone,serial\n" + CSV).encode())
    c.put_object(Bucket="exports", Key="readme.txt", Body=b"not a known format")
    yield server
    stop_versitygw(server)


@pytest.fixture(scope="module")
def default_keys() -> Iterator[S3Server]:
    server = start_versitygw(access_key="minioadmin", secret_key="minioadmin")
    server.client().create_bucket(Bucket="exports")
    yield server
    stop_versitygw(server)


def statuses(server: S3Server) -> dict[str, Status]:
    findings = check_store(server.store(), timeout=5)
    assert not [f for f in findings if f.status is Status.ERROR]
    na = {f.check: f.evidence for f in findings if f.status is Status.NOT_APPLICABLE}
    assert set(na) == UNDECIDABLE and "does not implement bucket logging" in na["s3.no-access-logging"]
    return {f.check: f.status for f in findings if f.check not in UNDECIDABLE}


def private(server: S3Server) -> None:
    server.client().delete_bucket_policy(Bucket="exports")  # no error when there is none


def test_private_bucket_passes(s3: S3Server) -> None:
    private(s3)
    got = statuses(s3)
    assert set(got) | UNDECIDABLE == engine_checks("s3")
    assert {c: s for c, s in got.items() if s is not Status.PASS} == {}


@pytest.mark.parametrize(("statement", "expected"), [
    (0, {"s3.anonymous-get", "s3.public-policy"}),
    (1, {"s3.anonymous-list", "s3.public-policy"}),
], ids=["public-read", "public-list"])
def test_public_policy_variants(s3: S3Server, statement: int, expected: set[str]) -> None:
    policy = {**PUBLIC_READ, "Statement": [PUBLIC_READ["Statement"][statement]]}
    s3.client().put_bucket_policy(Bucket="exports", Policy=json.dumps(policy))
    try:
        assert_fails_exactly(statuses(s3), expected)
    finally:
        private(s3)


def test_default_keys_are_found(default_keys: S3Server) -> None:
    assert_fails_exactly(statuses(default_keys), {"s3.default-credentials"})


def test_every_check_has_a_variant() -> None:
    covered = {"s3.anonymous-get", "s3.anonymous-list", "s3.public-policy", "s3.default-credentials"}
    assert covered | UNDECIDABLE == engine_checks("s3")


def test_scan_reads_objects_like_files(s3: S3Server, leaks: Leaks) -> None:
    leaks.seed(CSV.replace("\n", ",").split(","))
    result = scan([s3.store(bucket="exports")]).stores[0]
    assert result.problems == ()
    (customers,) = result.collections
    assert customers.name == "exports/2026/customers.csv"
    assert {f.field: f.pii_type for f in customers.pii_fields} == {
        "id": "customer-identifier", "email": "email", "phone": "phone", "serial": "device-serial"}


def test_watch_alerts_and_contains_a_public_bucket(s3: S3Server, tmp_path: Path, leaks: Leaks) -> None:
    leaks.seed(CSV.replace("\n", ",").split(","))
    private(s3)
    kept = {"Effect": "Allow", "Principal": {"AWS": [S3_ROOT_KEY]},
            "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::exports/*"]}
    out = io.StringIO()
    store = s3.store()
    with Catalog(tmp_path / "c.db") as cat:
        containor = Containor(cat, mode="auto", timeout=5)
        watcher = Watcher([store], cat, [JsonLines(out)], timeout=5, containor=containor)
        watcher.cycle()
        s3.client().put_bucket_policy(Bucket="exports", Policy=json.dumps(
            {**PUBLIC_READ, "Statement": [*PUBLIC_READ["Statement"], kept]}))
        watcher.cycle(inside=False)
        watcher.deliver()
        assert {(a["check"], a["event"]) for a in map(json.loads, out.getvalue().splitlines())} >= {
            ("s3.anonymous-get", "opened"), ("s3.anonymous-list", "opened")}
        (action,) = cat.containments(store.name)
        assert action["status"] == "verified", action
        left = json.loads(s3.client().get_bucket_policy(Bucket="exports")["Policy"])
        assert left["Statement"] == [kept]  # only the public statements went
        containor.undo(action["id"], store)
        back = json.loads(s3.client().get_bucket_policy(Bucket="exports")["Policy"])
        assert len(back["Statement"]) == 3
    private(s3)


@pytest.mark.parametrize(("policy", "public"), [
    ({}, 0),
    ({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}}, 1),  # one statement, no list
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                     "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}, 0),  # limited by a condition
    ({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*"}]}, 0),
    ({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:ListBucket"}]}, 1),
])
def test_public_statements(policy: dict[str, object], public: int) -> None:
    assert len(public_statements(policy)) == public


def test_a_headerless_object_named_after_a_customer(s3: S3Server) -> None:
    """Values never become names (issue 11): the object's key holds an address and its first row is a
    customer, so the collection shows ``<email>`` and the columns are ``col_1`` …"""
    c = s3.client()
    c.create_bucket(Bucket="leaky")
    c.put_object(Bucket="leaky", Key="backup/alice.brown@example.com.csv", Body=CSV.encode())
    result = scan([s3.store(bucket="leaky")]).stores[0]
    assert result.problems == ()
    (backup,) = result.collections
    assert backup.name == "leaky/backup/<email>.csv" and backup.rows_read == 500
    assert [f.field for f in backup.fields] == ["col_1", "col_2", "col_3", "col_4"]
    assert "alice.brown" not in repr(result) and "customer0@" not in repr(result)
