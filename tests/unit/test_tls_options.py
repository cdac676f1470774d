"""Each engine's TLS settings → the level they guarantee; policy require_tls parsed and matched by tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from piiguard.config import parse_config, store_from_url
from piiguard.engines import tls
from piiguard.errors import ConfigError
from piiguard.model import Store

LEVELS = [
    ("postgresql://u@h/db", "none"),
    ("postgresql://u@h/db?sslmode=require", "encrypted"),
    ("postgresql://u@h/db?sslmode=verify-ca&sslrootcert=/ca.pem", "encrypted"),  # host name unchecked
    ("postgresql://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem", "verified"),
    ("mysql://u@h/db", "none"),
    ("mysql://u@h/db?ssl=true&ssl_verify=false", "encrypted"),
    ("mariadb://u@h/db?ssl_ca=/ca.pem", "verified"),
    ("redis://h", "none"),
    ("rediss://h?ssl_cert_reqs=none", "encrypted"),
    ("rediss://h?ssl_ca_certs=/ca.pem", "verified"),
    ("clickhouse://h", "none"),
    ("clickhouse://h?secure=true&verify=false", "encrypted"),
    ("clickhouse://h?secure=true&ca_certs=/ca.pem", "verified"),
    ("opensearch://h?tls=false", "none"),
    ("opensearch://h?verify_certs=false", "encrypted"),
    ("elasticsearch://h", "verified"),
    ("mongodb://h", "none"),
    ("mongodb://h?tls=true&tlsAllowInvalidCertificates=true", "encrypted"),
    ("mongodb://h?tls=true&tlsCAFile=/ca.pem", "verified"),
    ("s3://h?tls=false", "none"),
    ("s3://h?verify=false", "encrypted"),
    ("s3://h?cafile=/ca.pem", "verified"),
]


@pytest.mark.parametrize(("url", "expected"), LEVELS, ids=[u for u, _ in LEVELS])
def test_tls_level_of_each_engines_settings(url: str, expected: str) -> None:
    assert tls.level(store_from_url(url)).value == expected


@pytest.mark.parametrize("url", ["postgresql://u@h/db?sslmode=sometimes", "rediss://h?ssl_cert_reqs=maybe",
                                 "mysql://u@h/db?ssl_verify=yes", "postgresql://u@h/db?ssl_ca=/x"])
def test_bad_tls_settings_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        store_from_url(url)


def test_enforce_refuses_less_than_required_and_names_the_store(tmp_path: Path) -> None:
    plain = Store("vault", "mysql", host="h", require_tls="verified")
    with pytest.raises(tls.TlsRefused, match=r"^vault: policy requires verified TLS") as raised:
        tls.enforce(plain)
    assert "ssl_ca" in (raised.value.hint or "")
    (tmp_path / "ca.pem").write_text("")  # a CA file that exists: one that does not is a configuration error
    tls.enforce(Store("vault", "mysql", host="h", options={"ssl_ca": str(tmp_path / "ca.pem")},
                      require_tls="verified"))
    tls.enforce(Store("vault", "mysql", host="h", options={"ssl": "true", "ssl_verify": "false"},
                      require_tls="encrypted"))
    with pytest.raises(tls.TlsRefused):
        tls.enforce(Store("v", "mysql", host="h", options={"ssl": "true", "ssl_verify": "false"},
                          require_tls="verified"))


def test_policy_require_tls_by_tag_name_and_everywhere() -> None:
    stores = [{"name": "prod-db", "engine": "postgres", "tags": {"env": "prod"}},
              {"name": "dev-db", "engine": "postgres", "tags": {"env": "dev"}},
              {"name": "own", "engine": "postgres", "require_tls": "encrypted"}]
    by_tag = parse_config({"stores": stores, "policy": {"require_tls": [{"tags": {"env": "prod"}, "level": "verified"}]}})
    assert [s.require_tls for s in by_tag.stores] == ["verified", "", "encrypted"]
    by_name = parse_config({"stores": stores, "policy": {"require_tls": [{"store": "dev-*", "level": "encrypted"}]}})
    assert [s.require_tls for s in by_name.stores] == ["", "encrypted", "encrypted"]
    everywhere = parse_config({"stores": stores, "policy": {"require_tls": "verified"}})
    assert {s.require_tls for s in everywhere.stores} == {"verified"}  # the strictest wins


@pytest.mark.parametrize("policy", [{"require_tls": "always"}, {"require_tls": [{"level": "verified", "tag": {}}]},
                                    {"require_tls": [{"tags": {"env": "prod"}}]}, {"require_tls": 3}])
def test_bad_require_tls_policy_is_a_configuration_error(policy: object) -> None:
    with pytest.raises(ConfigError, match=r"policy\.require_tls"):
        parse_config({"stores": [], "policy": policy})


def test_bad_store_require_tls_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"stores\[0\]\.require_tls"):
        parse_config({"stores": [{"name": "a", "engine": "postgres", "require_tls": "yes"}]})


def test_an_unreadable_ca_file_is_a_configuration_error_naming_the_store() -> None:
    s = store_from_url("mariadb://u@h/db?ssl_ca=/nonexistent/ca.pem", name="ledger")
    with pytest.raises(ConfigError, match=r"stores\.ledger\.options\.ssl_ca: the CA file /nonexistent/ca\.pem does not exist"):
        tls.context(s)


def test_tls_settings_as_store_keys_beside_the_others() -> None:
    cfg = parse_config({"stores": [
        {"name": "prod", "engine": "postgres", "host": "db", "sslmode": "verify-full", "sslrootcert": "/ca.pem"},
        {"name": "olap", "engine": "clickhouse", "host": "ch", "secure": True, "ca_certs": "/ca.pem"}]})
    prod, olap = cfg.stores
    assert dict(prod.options) == {"sslmode": "verify-full", "sslrootcert": "/ca.pem"}
    assert tls.level(prod) is tls.level(olap) is tls.TlsLevel.VERIFIED
    with pytest.raises(ConfigError, match=r"stores\[0\]\.options\.sslmode: unknown option for engine mysql"):
        parse_config({"stores": [{"name": "m", "engine": "mysql", "sslmode": "verify-full"}]})
