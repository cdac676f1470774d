"""The allow-list's boundary: IPv6 ranges that carry IPv4 addresses, "private" judged over every address
of a range, host bits, the bounds of rate and timeout, and discovery.max_addresses."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.discovery import addresses, networks
from piiguard.discovery.settings import AllowedNetwork, DiscoverySettings, parse_discovery
from piiguard.errors import UsageError

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def problems(raw: dict[str, object]) -> tuple[DiscoverySettings, list[str]]:
    said: list[str] = []
    got = parse_discovery(raw, lambda path, msg: said.append(f"{path}: {msg}"))
    return got, said


# Any range around an address inside an IPv4-carrying IPv6 prefix: inside it, or wider than it.
embedded = st.builds(lambda prefix, offset, plen: ipaddress.IPv6Network(
    (int(prefix.network_address) + offset % prefix.num_addresses, plen), strict=False),
    st.sampled_from([p for p, _ in addresses.EMBEDDING]), st.integers(0, 2**128), st.integers(1, 128))


@settings(max_examples=500, deadline=None)
@given(embedded, st.booleans())
def test_no_ipv6_range_that_carries_ipv4_is_ever_allowed_or_swept(net: ipaddress.IPv6Network, public: bool) -> None:
    if net.subnet_of(ipaddress.IPv6Network("::/127")):
        return  # :: and ::1: this host, not IPv4
    got, said = problems({"networks": [{"network": str(net), "public": public}]})
    assert got.networks == () and said and said[0].startswith("discovery.networks[0]: ")
    assert "IPv4" in said[0] and "write the IPv4 range itself" in said[0]
    # Built in code, past the configuration, it is still refused — listed as public, or under a listed range.
    for listed in (net, ipaddress.IPv6Network("::/1"), ipaddress.IPv6Network("2000::/3")):
        cfg = DiscoverySettings(networks=(AllowedNetwork(listed, True),))
        for request in ([str(net)], [str(net.network_address)], []):
            with pytest.raises(UsageError) as caught:
                networks.targets(request, cfg, max_addresses=2**128)
            assert caught.value.hint


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 32), st.integers(0, 2**32 - 1))
def test_nothing_that_reaches_a_public_ipv4_is_allowed_without_public_true(address: int, plen: int, pick: int
                                                                           ) -> None:
    net = ipaddress.IPv4Network((address, plen), strict=False)
    got, said = problems({"networks": [str(net)]})
    inner = net[pick % net.num_addresses]
    mapped = ipaddress.IPv6Network((int(inner) | 0xFFFF << 32, 128))
    assert problems({"networks": [str(mapped)]})[0].networks == ()  # its mapped form: never
    if got.networks:
        assert not said
        for a in (net.network_address, net.broadcast_address, inner):
            assert not a.is_global, f"{net} allowed without public: true holds {a}"


def test_the_private_list_holds_only_non_global_addresses_and_no_embedding() -> None:
    for net in addresses.PRIVATE:
        assert not net.network_address.is_global and not net.broadcast_address.is_global
        assert addresses.embedding(net) is None


@pytest.mark.parametrize("text", ["::ffff:0:0/96", "2001::/23", "2001::/32", "64:ff9b::/96", "64:ff9b:1::/48",
                                  "2002::/16", "::/96", "::ffff:0:0:0/96", "::/64", "::ffff:127.0.0.1"])
def test_each_ipv4_carrying_range_is_refused_with_or_without_public(text: str) -> None:
    for item in (text, {"network": text, "public": True}):
        got, said = problems({"networks": [item]})
        assert got.networks == () and "IPv4" in said[0], said


@pytest.mark.parametrize("text", ["0.0.0.0/1", "0.0.0.0/4", "120.0.0.0/5", "::/1"])
def test_a_range_whose_first_and_last_address_are_private_is_judged_over_every_address(text: str) -> None:
    got, said = problems({"networks": [text]})
    assert got.networks == () and ("public: true" in said[0] or "IPv4" in said[0]), said
    with pytest.raises(UsageError):
        networks.targets([text], DiscoverySettings(networks=(AllowedNetwork(ipaddress.ip_network(text)),)),
                         max_addresses=2**128)


def test_an_address_and_its_mapped_form_are_never_two_endpoints() -> None:
    cfg, _ = problems({"networks": ["127.0.0.0/8"]})
    assert list(networks.hosts(networks.targets(["127.0.0.217"], cfg))) == ["127.0.0.217"]
    with pytest.raises(UsageError) as caught:
        networks.targets(["127.0.0.217", "::ffff:127.0.0.217"], cfg)
    assert "IPv4-mapped" in caught.value.message and "127.0.0.217/32" in (caught.value.hint or "")


@pytest.mark.parametrize("private", ["::1", "::", "fd00::/8", "fe80::/10", "127.0.0.0/8", "10.0.0.0/8",
                                     "100.64.0.0/10", "192.168.0.0/16", "172.16.0.0/12"])
def test_private_ranges_still_pass(private: str) -> None:
    got, said = problems({"networks": [private]})
    assert not said and len(got.networks) == 1


# Host bits ------------------------------------------------------------------------------------------

@given(st.integers(0, 2**24 - 1), st.integers(8, 31))
def test_host_bits_are_refused_naming_the_network_they_would_mean(low: int, plen: int) -> None:
    address = ipaddress.IPv4Address(0x0A000000 | low)
    text = f"{address}/{plen}"
    meant = ipaddress.IPv4Network(text, strict=False)
    got, said = problems({"networks": [text]})
    if meant.network_address == address:
        assert not said and got.networks[0].network == meant
        return
    assert got.networks == () and text in said[0] and f"write {meant}" in said[0]
    with pytest.raises(UsageError) as caught:
        networks.targets([text], DiscoverySettings(networks=(AllowedNetwork(ipaddress.ip_network("10.0.0.0/8")),)),
                         max_addresses=2**24)
    assert text in caught.value.message and str(meant) in caught.value.message
    assert f"write {meant}" in (caught.value.hint or "")


def test_a_single_address_has_no_host_bits() -> None:
    got, said = problems({"networks": ["10.0.0.5", "10.0.0.5/32", "fd00::5"]})
    assert not said and len(got.networks) == 3


# Bounds ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value", "ok"), [
    ("timeout", 0.000001, False), ("timeout", 0.049, False), ("timeout", 0.05, True), ("timeout", 60, True),
    ("timeout", 61, False), ("rate", 0.0001, False), ("rate", 0.99, False), ("rate", 1, True),
    ("rate", 100_000, True), ("rate", 100_001, False), ("concurrency", 0.5, False), ("concurrency", 1, True),
    ("max_addresses", 0, False), ("max_addresses", 1.5, False), ("max_addresses", True, False),
    ("max_addresses", 16_777_216, True)])
def test_rate_timeout_concurrency_and_max_addresses_have_sane_bounds(key: str, value: float, ok: bool) -> None:
    got, said = problems({key: value})
    if ok:
        assert not said and getattr(got, key) == value
    else:
        assert said and said[0].startswith(f"discovery.{key}: expected ") and str(value) not in said[0]
        assert getattr(got, key) == getattr(DiscoverySettings(), key)


def test_max_addresses_from_the_configuration_is_the_sweeps_limit() -> None:
    small, _ = problems({"networks": ["10.0.0.0/8"], "max_addresses": 100})
    with pytest.raises(UsageError) as caught:
        networks.targets(["10.0.0.0/24"], small)
    assert "discovery.max_addresses" in caught.value.message
    assert "discovery.max_addresses: 254" in (caught.value.hint or "")
    assert networks.size(networks.targets(["10.0.0.0/24"], small, max_addresses=254)) == 254  # the flag wins
    big, _ = problems({"networks": ["127.0.0.0/8"], "max_addresses": 2**24})
    assert networks.size(networks.targets([], big)) == 2**24 - 2
    with pytest.raises(UsageError, match="16,777,214 addresses"):
        networks.targets([], problems({"networks": ["127.0.0.0/8"]})[0])


def test_covers_matches_hosts_without_listing_them() -> None:
    nets = [ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("fd00::/127")]
    listed = set(networks.hosts(nets))
    for host in ["10.0.0.0", "10.0.0.1", "10.0.0.254", "10.0.0.255", "10.0.1.1", "fd00::", "fd00::1", "fd00::2",
                 "::ffff:10.0.0.1", "banana"]:
        assert networks.covers(nets, host) == (host in listed), host
