"""The navigation policy without a browser: every spelling of an address reads as the
address browsers read, and each policy blocks what it says it blocks."""

from __future__ import annotations

import ipaddress

import pytest

from ledger.navigation import (
    Exemption,
    InvalidHost,
    NavigationConfig,
    NavigationPolicy,
    parse_host,
)

pytestmark = pytest.mark.unit

DEFAULT = NavigationPolicy("default")
PUBLIC = NavigationPolicy("public")


@pytest.mark.parametrize("spelling", [
    "127.0.0.1", "2130706433", "0x7f000001", "0X7F.0.0.1", "0177.0.0.1", "0177.0.0.01",
    "127.1", "127.0.1", "0x7f.1", "017700000001", "127.0.0.1.", "%31%32%37.0.0.1",
    "\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11", "127\u30020\u30020\u30021",
])
def test_every_spelling_of_loopback_is_loopback(spelling: str) -> None:
    assert parse_host(spelling) == ipaddress.IPv4Address("127.0.0.1")
    assert PUBLIC.judge_host(spelling, 80) == "loopback"
    assert DEFAULT.judge_host(spelling, 80) is None


@pytest.mark.parametrize("spelling", [
    "169.254.169.254", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518",
    "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::]", "[::169.254.169.254]", "[fd00:ec2::254]", "100.100.100.200",
    "metadata.google.internal", "METADATA.GOOGLE.INTERNAL.", "metadata",
])
def test_metadata_endpoints_are_blocked_by_both_policies(spelling: str) -> None:
    assert DEFAULT.judge_host(spelling, 80) == "cloud metadata"
    assert PUBLIC.judge_host(spelling, 80) == "cloud metadata"


@pytest.mark.parametrize(("host", "reason"), [
    ("169.254.1.1", "link-local"), ("[fe80::1]", "link-local"),
    ("[fe80::1%25eth0]", "link-local"),
])
def test_link_local_is_blocked_by_default(host: str, reason: str) -> None:
    assert DEFAULT.judge_host(host, 80) == reason


@pytest.mark.parametrize(("host", "reason"), [
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
    ("100.64.0.1", "shared address space"), ("[fc00::1]", "private"),
    ("[fd12:3456::1]", "private"), ("0.0.0.0", "unspecified"), ("0", "unspecified"),
    ("[::]", "unspecified"), ("224.0.0.1", "multicast"), ("[ff02::1]", "multicast"),
    ("240.0.0.1", "reserved"), ("[::1]", "loopback"), ("[::ffff:10.0.0.1]", "private"),
    ("localhost", "loopback"), ("app.localhost", "loopback"), ("192.0.2.1", "private"),
])
def test_public_blocks_what_is_not_globally_routable(host: str, reason: str) -> None:
    assert PUBLIC.judge_host(host, 80) == reason
    if host not in ("localhost", "app.localhost"):
        assert DEFAULT.judge_host(host, 80) is None


@pytest.mark.parametrize("host", ["example.com", "8.8.8.8", "[2606:4700::1111]", "1.1.1.1"])
def test_public_addresses_pass_both_policies(host: str) -> None:
    assert DEFAULT.judge_host(host, 443) is None and PUBLIC.judge_host(host, 443) is None


@pytest.mark.parametrize("host", ["256.0.0.1", "1.2.3.4.5", "0x100000000", "1.2.0x10000",
                                  "[::zz]", "08.0.0.1"])
def test_a_number_that_is_no_address_is_invalid(host: str) -> None:
    with pytest.raises(InvalidHost):
        parse_host(host)


def test_names_ending_in_a_word_are_names() -> None:
    assert parse_host("1.2.3.example") == "1.2.3.example"
    assert parse_host("Example.COM.") == "example.com"


def test_allow_entries_exempt_hosts_ports_and_networks() -> None:
    policy = NavigationPolicy("public", tuple(Exemption.parse(e) for e in (
        "127.0.0.1:8080", "10.0.0.0/8", "staging.internal", "*.corp.example", "[::1]:9000")))
    assert policy.judge_host("127.0.0.1", 8080) is None
    assert policy.judge_host("2130706433", 8080) is None  # the address, however spelled
    assert policy.judge_host("127.0.0.1", 8081) == "loopback"
    assert policy.judge_host("10.9.8.7", 1) is None
    assert policy.judge_address("staging.internal", ipaddress.ip_address("192.168.0.5"), 443) \
        is None
    assert policy.judge_address("a.corp.example", ipaddress.ip_address("10.0.0.1"), 80) is None
    assert policy.judge_address("corp.example", ipaddress.ip_address("192.168.0.1"), 80) \
        == "private"
    assert policy.judge_host("[::1]", 9000) is None and policy.judge_host("[::1]", 9001)
    # a name that resolves to a blocked address is judged on the address
    assert policy.judge_address("innocent.example", ipaddress.ip_address("192.168.0.1"), 80) \
        == "private"


def test_judge_url_reads_the_port_and_userinfo() -> None:
    policy = NavigationPolicy("public", (Exemption.parse("127.0.0.1:8443"),))
    assert policy.judge_url("https://user:pw@127.0.0.1:8443/x") is None
    assert policy.judge_url("https://127.0.0.1/x") == "loopback"
    assert policy.judge_url("http://[::ffff:127.0.0.1]/") == "loopback"
    assert policy.judge_url("/relative/path") is None


def test_navigation_allow_is_comma_separated_and_checked() -> None:
    config = NavigationConfig(navigation_policy="public",
                              navigation_allow="127.0.0.1:8000, staging.internal")
    assert config.navigation.judge_host("127.0.0.1", 8000) is None
    with pytest.raises(ValueError, match="NAVIGATION_ALLOW"):
        NavigationConfig(navigation_allow="http://x/path")
    with pytest.raises(ValueError, match="NAVIGATION_ALLOW"):
        NavigationConfig(navigation_allow="host:99999")
