"""The allow-list: properties over random allowed lists and requests, and each class of refusal."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piiguard.discovery import networks
from piiguard.discovery.settings import AllowedNetwork, DiscoverySettings, parse_discovery
from piiguard.errors import UsageError

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def allow(*nets: str, public: bool = False) -> DiscoverySettings:
    return DiscoverySettings(networks=tuple(AllowedNetwork(ipaddress.ip_network(n), public) for n in nets))


# Random ranges inside 10.0.0.0/8 (v4) and fd00::/8 (v6), small enough to enumerate.
v4 = st.builds(lambda a, p: ipaddress.ip_network((a, p), strict=False),
               st.integers(0x0A000000, 0x0AFFFFFF), st.integers(20, 32))
v6 = st.builds(lambda a, p: ipaddress.ip_network((a, p), strict=False),
               st.integers(0xFD << 120, (0xFE << 120) - 1), st.integers(116, 128))
ranges = st.one_of(v4, v6)


def inside(net: Net, allowed: list[Net]) -> bool:
    return any(a.version == net.version and net.subnet_of(a) for a in allowed)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ranges, min_size=1, max_size=4), st.lists(ranges, min_size=1, max_size=4))
def test_a_request_not_inside_is_refused_and_nothing_outside_is_swept(allowed: list[Net], requested: list[Net]
                                                                      ) -> None:
    cfg = DiscoverySettings(networks=tuple(AllowedNetwork(n) for n in allowed))
    texts = [str(n) for n in requested]
    if not all(inside(n, allowed) for n in requested):
        with pytest.raises(UsageError) as caught:
            networks.targets(texts, cfg, max_addresses=10**9)
        outside = next(n for n in requested if not inside(n, allowed))
        assert str(outside) in caught.value.message and "discovery.networks" in caught.value.message
        assert caught.value.hint == networks.ALLOW_HINT
        return
    got = networks.targets(texts, cfg, max_addresses=10**9)
    addresses = list(networks.hosts(got))
    assert len(addresses) == len(set(addresses)) == networks.size(got)
    for text in addresses:
        address = ipaddress.ip_address(text)
        assert any(address in a for a in allowed)
        assert any(address in r for r in requested)


@settings(max_examples=200, deadline=None)
@given(st.lists(ranges, min_size=1, max_size=5))
def test_every_requested_address_is_swept_once_except_v4_network_and_broadcast(requested: list[Net]) -> None:
    cfg = allow("10.0.0.0/8", "fd00::/8")
    got = networks.targets([str(n) for n in requested], cfg, max_addresses=10**9)
    swept = set(networks.hosts(got))
    wanted = {str(a) for n in requested for a in (n.hosts() if n.version == 4 and n.prefixlen < 31 else n)}
    merged_edges = {str(a) for n in got if n.version == 4 and n.prefixlen < 31
                    for a in (n.network_address, n.broadcast_address)}
    assert wanted - merged_edges <= swept
    assert swept <= {str(a) for n in requested for a in n}
    assert len(swept) == networks.size(got)


@given(st.integers(0, 16), st.integers(1, 70_000))
def test_more_addresses_than_allowed_is_refused_naming_the_count(bits: int, cap: int) -> None:
    net = ipaddress.ip_network(("10.1.0.0", 32 - bits), strict=False)
    count = networks.size([net])
    if count > cap:
        with pytest.raises(UsageError) as caught:
            networks.targets([str(net)], allow("10.0.0.0/8"), max_addresses=cap)
        assert f"{count:,}" in caught.value.message and "--max-addresses" in (caught.value.hint or "")
    else:
        assert networks.size(networks.targets([str(net)], allow("10.0.0.0/8"), max_addresses=cap)) == count


def test_the_default_limit_refuses_a_slash_eight_and_allows_a_slash_sixteen() -> None:
    cfg = allow("10.0.0.0/8")
    with pytest.raises(UsageError, match="16,777,214 addresses"):
        networks.targets([], cfg)
    assert networks.size(networks.targets(["10.3.0.0/16"], cfg)) == 65_534


def test_an_ipv6_range_larger_than_the_limit_is_refused() -> None:
    with pytest.raises(UsageError, match="18,446,744,073,709,551,616 addresses"):
        networks.targets(["fd00:1::/64"], allow("fd00::/8"))


def test_no_allowed_network_is_refused_with_the_yaml_to_write() -> None:
    with pytest.raises(UsageError) as caught:
        networks.targets(["10.0.0.1"], DiscoverySettings())
    assert "discovery.networks" in caught.value.message
    assert "discovery: {networks: [10.20.0.0/16]}" in (caught.value.hint or "")


@pytest.mark.parametrize("text", ["10.0.0.300", "banana", "10.0.0.0/33", "", "10.0.0.0/8; rm -rf /", "::g"])
def test_a_request_that_is_not_a_range_is_refused(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        networks.targets([text], allow("10.0.0.0/8"))
    assert "is not an address range" in caught.value.message and "CIDR" in (caught.value.hint or "")


def test_a_bare_address_is_one_host_and_edges_of_small_ranges_are_kept() -> None:
    cfg = allow("10.0.0.0/8", "fd00::/8")
    assert list(networks.hosts(networks.targets(["10.0.0.0"], cfg))) == ["10.0.0.0"]
    assert list(networks.hosts(networks.targets(["fd00::7"], cfg))) == ["fd00::7"]
    assert list(networks.hosts(networks.targets(["10.0.0.4/31"], cfg))) == ["10.0.0.4", "10.0.0.5"]
    assert list(networks.hosts(networks.targets(["10.0.0.4/30"], cfg))) == ["10.0.0.5", "10.0.0.6"]


def test_overlapping_requests_are_merged_and_counted_once() -> None:
    got = networks.targets(["10.0.0.0/25", "10.0.0.0/24", "10.0.0.7"], allow("10.0.0.0/8"))
    assert [str(n) for n in got] == ["10.0.0.0/24"] and networks.size(got) == 254


def test_a_public_range_needs_public_true() -> None:
    problems: list[str] = []
    parse_discovery({"networks": ["192.88.99.0/28"]}, lambda path, msg: problems.append(f"{path}: {msg}"))
    assert problems and "public: true" in problems[0]
    # Built in code without the flag, the allow-list itself still refuses it.
    with pytest.raises(UsageError, match="public addresses") as caught:
        networks.targets(["192.88.99.0/28"], allow("192.88.99.0/24"))
    assert "public: true" in (caught.value.hint or "")
    assert networks.size(networks.targets(["192.88.99.0/28"], allow("192.88.99.0/24", public=True))) == 14
    # A public range is refused when only private ones are listed.
    with pytest.raises(UsageError, match="not inside the allow-list"):
        networks.targets(["192.88.99.0/28"], allow("10.0.0.0/8"))


def test_other_family_is_never_inside() -> None:
    with pytest.raises(UsageError, match="not inside"):
        networks.targets(["fd00::1"], allow("10.0.0.0/8"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_a_range_inside_or_a_usage_error_naming_it(text: str) -> None:
    try:
        got = networks.targets([text], allow("10.0.0.0/8", "fd00::/8"), max_addresses=2**20)
    except UsageError as exc:
        named = repr(text[:60]) in exc.message  # not a range: the text, quoted and escaped
        named = named or str(ipaddress.ip_network(text.strip(), strict=False)) in exc.message  # outside, or too big
        assert named, exc.message
        assert exc.hint
        assert not any(ord(ch) < 32 for ch in exc.message)  # a control character in the request is escaped
        return
    assert all(any(ipaddress.ip_address(h) in a for a in (ipaddress.ip_network("10.0.0.0/8"),
                                                          ipaddress.ip_network("fd00::/8")))
               for h in networks.hosts(got))


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(UsageError, match="allows nothing"):
        networks.targets(["10.0.0.1"], allow("10.0.0.0/8"), max_addresses=0)
