from __future__ import annotations

from datetime import date

import pytest

from piiguard.config import parse_config
from piiguard.errors import ConfigError
from piiguard.model import Finding, Severity, Status, Store, Vantage
from piiguard.policy import Policy

CHECKS = {"postgres.no-audit", "postgres.log-connections", "redis.no-tls"}


def finding(check: str, store: str = "cache", status: Status = Status.FAIL) -> Finding:
    return Finding(check, store, status, Severity.MEDIUM, Vantage.INSIDE, "t", "evidence")


def policy(raw: dict[str, object]) -> Policy:
    return parse_config({"policy": raw}, check_ids=CHECKS).policy


def test_skip_by_tags() -> None:
    p = policy({"skip": [{"tags": {"env": "dev"}, "checks": ["*.no-audit"]}]})
    dev, prod = Store("a", "postgres", tags={"env": "dev"}), Store("b", "postgres", tags={"env": "prod"})
    assert p.applicable(dev, ["postgres.no-audit", "postgres.log-connections"]) == ["postgres.log-connections"]
    assert p.applicable(prod, ["postgres.no-audit"]) == ["postgres.no-audit"]


def test_severity_override_and_waivers_current_and_expired() -> None:
    p = policy({"severity": {"postgres.log-connections": "high"},
                "waivers": [{"check": "redis.no-tls", "store": "cache", "reason": "stunnel on the host",
                             "expires": "2026-12-31"}]})
    out = p.apply([finding("postgres.log-connections"), finding("redis.no-tls"), finding("redis.no-tls", "other")],
                  today=date(2026, 11, 25))
    assert out[0].severity is Severity.HIGH
    assert out[1].waiver == "waived until 2026-12-31: stunnel on the host"
    assert out[2].waiver == ""  # another store
    expired = p.apply([finding("redis.no-tls")], today=date(2027, 1, 1))[0]
    assert expired.waiver == "" and "waiver expired 2026-12-31" in expired.evidence


def test_bad_policy_reports_every_problem_with_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"policy": {"severity": {"nope.check": "high", "redis.no-tls": "urgent"},
                                  "waivers": [{"check": "redis.no-tls"}], "extra": 1}}, check_ids=CHECKS)
    text = "\n".join(err.value.problems)
    assert "policy.severity.nope.check: unknown check" in text
    assert "policy.severity.redis.no-tls: expected one of" in text
    assert "policy.waivers[0].reason: required" in text and "policy.waivers[0].expires: required" in text
    assert "policy.extra: unknown key" in text
