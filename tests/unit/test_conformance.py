"""Every registered plugin is documented and tested."""

from __future__ import annotations

import inspect

from piiguard import plugins
from piiguard.classify.detectors import detectors
from piiguard.connectors.base import connectors
from unit.test_detectors import NEGATIVE, POSITIVE

REQUIRED_TYPES = {
    "email", "person-name", "first-name", "last-name", "username", "phone", "street-address", "postal-code",
    "city", "birth-date", "ip-address", "mac-address", "wifi-ssid", "geo-coordinates", "device-serial",
    "personal-media-url", "oauth-token", "api-key", "password-hash", "credit-card", "iban", "us-ssn",
    "national-id", "gender", "free-text-pii", "customer-identifier",
}


def test_required_types_are_registered() -> None:
    plugins.load()
    assert set(detectors.names()) >= REQUIRED_TYPES


def test_every_detector_is_documented_and_has_positive_and_negative_cases() -> None:
    plugins.load()
    for name in detectors:
        d = detectors.get(name)
        assert len(d.doc.strip()) > 20, name
        assert POSITIVE.get(name) and NEGATIVE.get(name), f"{name} needs detection cases in test_detectors.py"


def test_every_check_is_documented_and_tested() -> None:
    from pathlib import Path

    from piiguard.checks.base import checks, targets

    plugins.load()
    tests = "".join(p.read_text() for p in Path(__file__).parent.parent.rglob("test_*.py"))
    for check_id in checks:
        cls = checks.get(check_id)
        doc = cls.doc()
        assert cls.title() and "Risk:" in doc and "Fix:" in doc, check_id
        assert (check_id.split(".")[0] == cls.engine and cls.engine in targets) or cls.engine == "*", check_id
        assert f'"{check_id}"' in tests, f"{check_id} is named by no test"
        assert not cls.exposes or cls.vantage.value == "outside", f"{check_id}: an open door is seen from outside"


def test_every_connector_is_documented() -> None:
    plugins.load()
    assert {"postgres", "mysql", "sqlite", "files", "clickhouse", "redis"} <= set(connectors.names())
    for name in connectors:
        cls = connectors.get(name)
        assert inspect.getdoc(cls) and inspect.getdoc(inspect.getmodule(cls)) and cls.privileges, name


def test_every_responder_is_documented_and_tested_on_its_engines() -> None:
    from pathlib import Path

    from piiguard.response.responders import responders

    plugins.load()
    tests = "".join(p.read_text() for p in Path(__file__).parent.parent.rglob("test_*.py"))
    for kind in responders:
        cls = responders.get(kind)
        assert "Options:" in (inspect.getdoc(cls) or ""), f"{kind}: its options are documented in its docstring"
        assert cls.engines, kind
        assert f'"kind": "{kind}"' in tests or f"kind: {kind}" in tests, f"{kind} is configured by no test"
