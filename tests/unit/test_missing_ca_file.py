"""A store option naming a CA file that does not exist is a configuration error naming the option and
the path (exit 2) on every engine that takes one, and ``validate`` reports it; never an internal error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from piiguard import plugins
from piiguard.config import missing_secrets
from piiguard.connectors.base import connectors
from piiguard.engines import tls
from piiguard.errors import ConfigError
from piiguard.model import Store

MISSING = "/nonexistent/piiguard-ca.pem"
# every engine's CA option, with what turns its TLS on
CASES = [
    ("postgres", "sslrootcert", {"sslmode": "verify-full"}),
    ("mysql", "ssl_ca", {}),
    ("redis", "ssl_ca_certs", {"tls": "true"}),
    ("clickhouse", "ca_certs", {"secure": "true"}),
    ("opensearch", "cafile", {}),
    ("opensearch", "ca_certs", {}),
    ("mongodb", "cafile", {"tls": "true"}),
    ("mongodb", "cafile", {}),  # the reported case: TLS off, a cafile named anyway
    ("mongodb", "tlsCAFile", {"tls": "true"}),
    ("s3", "cafile", {}),
]
IDS = [f"{e}-{k}{'-tls' if on else ''}" for e, k, on in CASES]


def store(engine: str, key: str, on: dict[str, str]) -> Store:
    return Store("shop", engine, host="127.0.0.1", port=9, user="u", database="d", password_env="PIIGUARD_T_PW",
                 options={**on, key: MISSING})


@pytest.mark.parametrize(("engine", "key", "on"), CASES, ids=IDS)
def test_opening_names_the_option_and_the_path(engine: str, key: str, on: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert key in tls.OPTION_KEYS[engine] | {"cafile"}
    monkeypatch.setenv("PIIGUARD_T_PW", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    plugins.load()
    with pytest.raises(ConfigError) as err, connectors.get(engine)(store(engine, key, on), timeout=2):
        pass
    assert err.value.exit_code == 2
    assert f"options.{key}" in str(err.value) and MISSING in str(err.value) and "does not exist" in str(err.value)


def test_every_engine_with_a_ca_option_is_tested() -> None:
    assert {e for e, _, _ in CASES} == {e for e, keys in tls.OPTION_KEYS.items() if keys & set(tls.CA_KEYS)}


@pytest.mark.parametrize(("engine", "key", "on"), [c for c in CASES if c[0] in ("mongodb", "postgres")],
                         ids=[i for c, i in zip(CASES, IDS, strict=True) if c[0] in ("mongodb", "postgres")])
def test_scan_and_validate_from_the_cli(tmp_path: Path, engine: str, key: str, on: dict[str, str]) -> None:
    options = "".join(f"      {k}: '{v}'\n" for k, v in {**on, key: MISSING}.items())
    cfg = tmp_path / "piiguard.yaml"
    cfg.write_text(f"catalog: {tmp_path / 'c.db'}\nstores:\n  - name: shop\n    engine: {engine}\n"
                   f"    host: 127.0.0.1\n    port: 9\n    user: u\n    database: d\n"
                   f"    password_env: PIIGUARD_T_PW\n    options:\n{options}")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), "PIIGUARD_T_PW": "x", "HOME": str(tmp_path)}
    # check and validate stop with the configuration error; scan reports it as that store's problem and
    # goes on with the other stores (as for any store it cannot open)
    for args, code in ((["check", "shop", "-c", str(cfg)], 2), (["validate", str(cfg)], 2),
                       (["scan", "shop", "-c", str(cfg)], 1)):
        run = subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True,
                             cwd=tmp_path, env=env, timeout=120)
        out = " ".join((run.stdout + run.stderr).split())
        assert run.returncode == code, out
        assert f"options.{key}" in out and MISSING in out and "internal error" not in out


def test_validate_lists_a_missing_ca_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIIGUARD_T_PW", "x")
    problems = missing_secrets([store("mongodb", "cafile", {})])
    assert problems == [f"stores[0].options.cafile: the CA file {MISSING} does not exist"]
