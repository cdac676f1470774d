"""Alert sink settings: whatever ``alerts:`` or watch's sink flags hold, validation either refuses them
with the path of the bad value (exit 2), or the sinks are built from them without an error — never
a configuration that passes ``validate`` and then crashes ``watch``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piiguard.config import check_alert_flags, parse_config
from piiguard.errors import ConfigError
from piiguard.watch.sinks import from_config

SRC = str(Path(__file__).resolve().parents[2] / "src")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 100_000), st.text(max_size=12),
                    st.sampled_from(["abc", "25", "127.0.0.1", "a\nb", "x@example.org", "a,b@c"]))
urls = st.one_of(scalars, st.builds(lambda s, h, p: f"{s}://{h}{p}",
                                    st.sampled_from(["udp", "tcp", "http", "https", "ftp"]),
                                    st.sampled_from(["127.0.0.1", "", "[::1]", "h\nx", "localhost"]),
                                    st.sampled_from(["", ":514", ":99999", ":0", ":abc", ":-1", ":65535/x"])))
smtp = st.fixed_dictionaries({"smtp": scalars}, optional={
    "port": scalars, "to": st.one_of(scalars, st.lists(scalars, max_size=3)), "from": scalars,
    "starttls": scalars, "smtps": scalars, "user": scalars, "password_env": scalars, "cafile": scalars})
sinks = st.one_of(smtp, st.fixed_dictionaries({"syslog": urls}),
                  st.fixed_dictionaries({"webhook": urls}, optional={"slack": scalars}))


@settings(max_examples=400, deadline=None)
@given(sinks)
def test_a_sink_that_validates_is_built(item: dict[str, Any]) -> None:
    try:
        config = parse_config({"alerts": [item]})
    except ConfigError as exc:
        assert all(p.startswith("alerts[0]") for p in exc.problems), exc.problems
        return
    from_config(config.alerts)  # must not raise: validate's yes is watch's yes


@settings(max_examples=200, deadline=None)
@given(sinks)
def test_flags_are_checked_by_the_same_rules(item: dict[str, Any]) -> None:
    kind = next(k for k in ("smtp", "syslog", "webhook") if k in item)
    try:
        check_alert_flags([(f"--{kind}", {"kind": kind, **item})])
    except ConfigError as exc:
        assert all(p.startswith(f"--{kind}: ") for p in exc.problems), exc.problems
        return
    from_config([{"kind": kind, **item}])


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "piiguard", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=60)


@pytest.mark.parametrize(("alert", "path"), [
    ("{smtp: 127.0.0.1, port: abc, to: [a@example.org]}", "alerts[0].port"),
    ("{syslog: 'tcp://127.0.0.1:99999'}", "alerts[0].syslog"),
    ("{webhook: 'http://127.0.0.1:70000/x'}", "alerts[0].webhook"),
], ids=["smtp-port", "syslog-port", "webhook-port"])
def test_validate_and_watch_refuse_a_bad_sink_setting_with_its_path(tmp_path: Path, alert: str, path: str) -> None:
    (tmp_path / "piiguard.yaml").write_text(f"stores:\n  - name: c\n    url: redis://127.0.0.1:9/0\nalerts:\n  - {alert}\n")
    for args in (("validate", "piiguard.yaml"), ("watch", "--once", "-c", "piiguard.yaml", "--catalog", "c.db")):
        done = run(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert path in done.stdout + done.stderr and "internal error" not in done.stderr


def test_the_syslog_flag_is_refused_with_its_name(tmp_path: Path) -> None:
    done = run("watch", "redis://127.0.0.1:9/0", "--once", "--syslog", "tcp://127.0.0.1:99999", "--catalog", "c.db",
               cwd=tmp_path)
    assert done.returncode == 2 and "--syslog" in done.stderr and "internal error" not in done.stderr, done.stderr
