from __future__ import annotations

from pathlib import Path

import pytest

from piiguard.classify.detectors import Detector
from piiguard.config import load_config, parse_config, resolve_password, store_from_url
from piiguard.errors import ConfigError, PluginError
from piiguard.registry import Registry


def test_every_problem_is_reported_with_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"stores": [{"name": "a", "engine": "postgres", "port": "x", "pasword_env": "X"},
                                 {"name": "a", "engine": "nosuch"}], "detectors": [{"name": "Bad Name"}]},
                     engines={"postgres"})
    problems = "\n".join(err.value.problems)
    assert "stores[0].port: expected an integer" in problems
    assert "stores[0].pasword_env: unknown key (did you mean 'password_env'?)" in problems
    assert "stores[1].engine: unknown engine 'nosuch'" in problems
    assert "stores[1].name: duplicate store name 'a'" in problems
    assert "detectors[0].name" in problems and "detectors[0].pattern: required" in problems
    assert err.value.exit_code == 2


def test_inline_password_is_refused() -> None:
    with pytest.raises(ConfigError, match="inline passwords are refused"):
        parse_config({"stores": [{"name": "a", "engine": "postgres", "password": "hunter2"}]})


def test_password_in_url_is_refused_and_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        store_from_url("postgresql://app:hunter2@db:5432/prod")
    assert "environment variable" in str(err.value) and "hunter2" not in str(err.value)


@pytest.mark.parametrize(("url", "engine", "expect"), [
    ("postgresql://app@db.internal:6543/prod", "postgres", ("db.internal", 6543, "prod", "app", "PGPASSWORD")),
    ("mysql://root@127.0.0.1/app", "mysql", ("127.0.0.1", 3306, "app", "root", "MYSQL_PWD")),
    ("mariadb://u@h:3307/d?password_env=MY_PW", "mysql", ("h", 3307, "d", "u", "MY_PW")),
    ("redis://admin@cache:6380/0", "redis", ("cache", 6380, "0", "admin", "REDISCLI_AUTH")),
    ("opensearch://admin@search:9200", "opensearch", ("search", 9200, None, "admin", "OPENSEARCH_PASSWORD")),
    ("elasticsearch://elastic@es", "opensearch", ("es", 9200, None, "elastic", "OPENSEARCH_PASSWORD")),
    ("mongodb://app@docs/shop", "mongodb", ("docs", 27017, "shop", "app", "MONGODB_PASSWORD")),
    ("s3://AKIAEXAMPLE@minio:9000/exports", "s3", ("minio", 9000, "exports", "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY")),
])
def test_database_urls(url: str, engine: str, expect: tuple[object, ...]) -> None:
    s = store_from_url(url)
    assert s.engine == engine and (s.host, s.port, s.database, s.user, s.password_env) == expect


def test_clickhouse_url_options_and_unknown_options() -> None:
    s = store_from_url("clickhouse://default@olap:8123/db?tcp_port=9440&config_dir=/etc/clickhouse-server")
    assert (s.engine, s.port, dict(s.options)) == ("clickhouse", 8123, {"tcp_port": "9440",
                                                                       "config_dir": "/etc/clickhouse-server"})
    with pytest.raises(ConfigError, match="unknown URL parameter 'ssl_mode'"):  # sslmode is known: engines.tls
        store_from_url("postgresql://u@h/db?ssl_mode=disable")
    with pytest.raises(ConfigError, match=r"stores\[0\]\.options\.bogus: unknown option for engine redis"):
        parse_config({"stores": [{"name": "r", "engine": "redis", "options": {"bogus": "1"}}]})


def test_tls_option_must_be_a_boolean() -> None:
    s = store_from_url("opensearch://admin@search:9200?tls=false&cafile=/etc/ca.pem")
    assert dict(s.options) == {"tls": "false", "cafile": "/etc/ca.pem"}
    with pytest.raises(ConfigError, match="tls: expected true or false"):
        store_from_url("mongodb://app@docs/shop?tls=maybe")
    with pytest.raises(ConfigError, match=r"stores\[0\]\.options\.tls: tls: expected true or false"):
        parse_config({"stores": [{"name": "b", "engine": "s3", "host": "h", "options": {"tls": "yes"}}]})


def test_exposure_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"allowed_networks\[1\]: not a network"):
        parse_config({"stores": [{"name": "r", "url": "redis://h", "allowed_networks": ["10.0.0.0/8", "ten"]}]})


def test_path_urls() -> None:
    assert store_from_url("sqlite:///srv/app.db").path == "/srv/app.db"
    assert store_from_url("file:///srv/exports").engine == "files"
    with pytest.raises(ConfigError, match="unsupported URL scheme"):
        store_from_url("cassandra://localhost")


def test_yaml_file_and_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(f"stores:\n  - name: prod\n    url: postgresql://app@db/prod\n    password_file: {tmp_path}/pw\n"
                   "    tags: {env: prod}\ndetectors:\n  - name: loyalty-number\n    pattern: 'LOY-[0-9]{8}'\n")
    config = load_config(cfg)
    assert config.stores[0].tags["env"] == "prod"
    assert resolve_password(config.stores[0]) == "s3cret"
    assert config.detectors[0].name == "loyalty-number"


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text("stores:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"piiguard.yaml:\d+: not valid YAML"):
        load_config(cfg)


def test_registry_refuses_duplicates_and_wrong_base() -> None:
    reg: Registry[Detector] = Registry("detector", Detector)
    reg.add("x", Detector("x", "doc"))
    with pytest.raises(PluginError, match="already registered"):
        reg.add("x", Detector("x", "doc"))
    with pytest.raises(PluginError, match="is not a Detector"):
        reg.add("y", "not a detector")  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="unknown detector 'z'"):
        reg.get("z")
