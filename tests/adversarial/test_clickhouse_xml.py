"""ClickHouse's XML configuration read as the server reads it: users.d files merged into users.xml
(with ``replace`` and ``remove``), external authentication (LDAP, Kerberos) counted as a password,
and networks judged by the address space their union covers, not by literals."""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.checks.clickhouse import ClickHouseTarget, NetworksOpen, UsersWithoutPassword
from piiguard.model import Status, Store

HASH = "65e84be33532fb784c48129675f9eff3a682b27168c0ea744b2cf58ee02337c5"


def target(tmp_path: Path, users: str, *overrides: str) -> ClickHouseTarget:
    (tmp_path / "users.xml").write_text(f"<clickhouse><users>{users}</users></clickhouse>")
    (tmp_path / "users.d").mkdir(exist_ok=True)
    for i, text in enumerate(overrides):
        (tmp_path / "users.d" / f"{i:02}.xml").write_text(f"<clickhouse><users>{text}</users></clickhouse>")
    return ClickHouseTarget(Store("ch", "clickhouse", host="127.0.0.1", options={"config_dir": str(tmp_path)}))


def run(check: type[UsersWithoutPassword] | type[NetworksOpen], t: ClickHouseTarget) -> tuple[Status, str]:
    out = check().run(t)
    return out.status, out.evidence


SAFE = f"<password_sha256_hex>{HASH}</password_sha256_hex><networks><ip>10.0.0.0/8</ip></networks>"


def test_an_override_that_only_restricts_networks_keeps_the_password(tmp_path: Path) -> None:
    t = target(tmp_path, f"<default>{SAFE}</default>",
               '<default><networks replace="replace"><ip>127.0.0.1</ip></networks></default>')
    assert run(UsersWithoutPassword, t)[0] is Status.PASS
    assert t.users["default"].findtext("networks/ip") == "127.0.0.1"
    assert len(t.users["default"].findall("networks/ip")) == 1


def test_replace_and_remove_are_honoured(tmp_path: Path) -> None:
    t = target(tmp_path, f"<default>{SAFE}</default><old>{SAFE}</old>",
               '<default replace="replace"><networks><ip>10.0.0.0/8</ip></networks></default>',
               '<old remove="remove"/>')
    assert run(UsersWithoutPassword, t) == (Status.FAIL, "no password: default")
    assert "old" not in t.users


def test_a_merged_override_opens_networks(tmp_path: Path) -> None:
    t = target(tmp_path, f"<app>{SAFE}</app>", "<app><networks><ip>::/0</ip></networks></app>")
    assert run(NetworksOpen, t)[0] is Status.FAIL


@pytest.mark.parametrize("auth", ["<ldap><server>corp</server></ldap>", "<kerberos/>",
                                  "<kerberos><realm>CORP</realm></kerberos>",
                                  "<ssl_certificates><common_name>app</common_name></ssl_certificates>"],
                         ids=["ldap", "kerberos-empty", "kerberos-realm", "certificate"])
def test_external_authentication_is_a_password(tmp_path: Path, auth: str) -> None:
    t = target(tmp_path, f"<svc>{auth}<networks><ip>10.0.0.0/8</ip></networks></svc>")
    assert run(UsersWithoutPassword, t)[0] is Status.PASS


def test_an_empty_password_is_none(tmp_path: Path) -> None:
    t = target(tmp_path, "<svc><password></password><networks><ip>10.0.0.0/8</ip></networks></svc>")
    assert run(UsersWithoutPassword, t) == (Status.FAIL, "no password: svc")


@pytest.mark.parametrize(("networks", "open_"), [
    ("<host_regexp>.*</host_regexp>", True),
    ("<host_regexp>^.+$</host_regexp>", True),
    ("<ip>0.0.0.0/1</ip><ip>128.0.0.0/1</ip>", True),
    ("<ip>::ffff:0.0.0.0/96</ip>", True),
    ("<ip>::/1</ip><ip>8000::/1</ip>", True),
    ("<ip>0.0.0.0/1</ip>", False),
    ("<ip>10.0.0.0/8</ip><ip>::ffff:10.0.0.0/104</ip>", False),
    (r"<host_regexp>^app\d+\.corp\.example$</host_regexp>", False),
    ("<host>app.corp.example</host>", False),
], ids=["regexp-any", "regexp-anchored-any", "two-halves", "all-ipv4-mapped", "ipv6-halves", "half",
        "private", "regexp-narrow", "host"])
def test_networks_open_is_decided_by_coverage(tmp_path: Path, networks: str, open_: bool) -> None:
    t = target(tmp_path, f"<app><password_sha256_hex>{HASH}</password_sha256_hex><networks>{networks}</networks></app>")
    assert run(NetworksOpen, t)[0] is (Status.FAIL if open_ else Status.PASS)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6), st.booleans())
def test_any_split_of_ipv4_is_open_and_any_gap_is_not(tmp_path_factory: pytest.TempPathFactory, cuts: list[int],
                                                      drop: bool) -> None:
    """The address space cut at random points into CIDR blocks: all of them together is open, one
    missing is not (written as IPv4 or IPv4-mapped IPv6, at random by position)."""
    edges = sorted({0, *cuts, 2**32})
    blocks = [n for a, b in itertools.pairwise(edges) for n in ipaddress.summarize_address_range(
        ipaddress.IPv4Address(a), ipaddress.IPv4Address(b - 1))]
    if drop and len(blocks) > 1:
        blocks = blocks[1:]
    written = "".join(f"<ip>::ffff:{n.network_address}/{96 + n.prefixlen}</ip>" if i % 2 else f"<ip>{n}</ip>"
                      for i, n in enumerate(blocks))
    t = target(tmp_path_factory.mktemp("ch"), f"<app><password_sha256_hex>{HASH}</password_sha256_hex>"
               f"<networks>{written}</networks></app>")
    assert run(NetworksOpen, t)[0] is (Status.PASS if drop and len(edges) > 2 else Status.FAIL)
