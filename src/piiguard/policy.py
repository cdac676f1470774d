"""Policy: which checks apply to which stores, severity overrides, and waivers.

In ``piiguard.yaml``::

    policy:
      skip:                               # checks that do not apply, chosen by store tags
        - tags: {env: dev}
          checks: ["*.no-audit", "*.log-connections"]
      severity:                           # override a check's severity everywhere
        postgres.log-connections: high
      waivers:                            # an accepted risk, with a reason and an end date
        - check: redis.no-tls
          store: cache                    # a store name or glob; default: every store
          reason: TLS is terminated by stunnel on the same host
          expires: 2027-01-31

      containment: approve                # never (default) | approve | auto
      containment_rate: 5                 # at most this many stores closed per minute
      require_tls:                        # refuse to connect without this TLS (or: require_tls: verified)
        - tags: {env: prod}               # stores with these tags (and/or store: name or glob)
          level: verified                 # verified (chain and host name checked) | encrypted

A waived failure is still reported (status ``fail``, marked waived, with the reason) but does not
count for ``--fail-on``; once the waiver has expired it counts again and says when it expired.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from types import MappingProxyType
from typing import Any

from piiguard.model import Finding, Severity, Status, Store
from piiguard.schema import did_you_mean, key_path, unknown_keys

Problem = Callable[[str, str], None]


@dataclass(frozen=True)
class SkipRule:
    tags: Mapping[str, str]
    checks: tuple[str, ...]

    def applies(self, store: Store, check_id: str) -> bool:
        return all(store.tags.get(k) == v for k, v in self.tags.items()) and \
            any(fnmatch.fnmatchcase(check_id, pattern) for pattern in self.checks)


@dataclass(frozen=True)
class Waiver:
    check: str
    store: str
    reason: str
    expires: date

    def covers(self, finding: Finding) -> bool:
        return fnmatch.fnmatchcase(finding.check, self.check) and fnmatch.fnmatchcase(finding.store, self.store)


CONTAINMENT_MODES = ("never", "approve", "auto")
POLICY_KEYS = ("skip", "severity", "waivers", "containment", "containment_rate", "require_tls")
TLS_LEVELS = ("encrypted", "verified")


@dataclass(frozen=True)
class TlsRule:
    """Stores (by tags and/or name glob) whose connections must use at least ``level`` TLS."""

    level: str
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    store: str = "*"

    def applies(self, store: Store) -> bool:
        return all(store.tags.get(k) == v for k, v in self.tags.items()) and \
            fnmatch.fnmatchcase(store.name, self.store)


@dataclass(frozen=True)
class Policy:
    skip: tuple[SkipRule, ...] = ()
    severity: Mapping[str, Severity] = field(default_factory=lambda: MappingProxyType({}))
    waivers: tuple[Waiver, ...] = ()
    containment: str = "never"  # never | approve | auto: what watch does when a store is exposed
    containment_rate: int = 5  # at most this many stores closed per minute
    require_tls: tuple[TlsRule, ...] = ()

    def stamp(self, store: Store) -> Store:
        """The store with the strictest TLS its own setting and the matching rules require."""
        levels = [store.require_tls, *(r.level for r in self.require_tls if r.applies(store))]
        need = max((lv for lv in levels if lv), key=TLS_LEVELS.index, default="")
        return store if need == store.require_tls else replace(store, require_tls=need)

    def applicable(self, store: Store, check_ids: Sequence[str]) -> list[str]:
        return [c for c in check_ids if not any(rule.applies(store, c) for rule in self.skip)]

    def apply(self, findings: Sequence[Finding], today: date) -> list[Finding]:
        """Severity overrides, then waivers (current ones mark the failure waived; expired ones say so)."""
        out = []
        for f in findings:
            if f.check in self.severity:
                f = replace(f, severity=self.severity[f.check])
            waiver = next((w for w in self.waivers if w.covers(f)), None)
            if waiver is not None and f.status is Status.FAIL:
                if waiver.expires >= today:
                    f = replace(f, waiver=f"waived until {waiver.expires}: {waiver.reason}")
                else:
                    f = replace(f, evidence=f"{f.evidence} (waiver expired {waiver.expires})")
            out.append(f)
        return out


def parse_policy(raw: Any, problem: Problem, check_ids: set[str] | None = None) -> Policy:
    if raw is None:
        return Policy()
    if not isinstance(raw, Mapping):
        problem("policy", "expected a mapping with skip, severity and waivers")
        return Policy()
    unknown_keys(raw, POLICY_KEYS, "policy", problem)
    mode = raw.get("containment", "never")
    if mode not in CONTAINMENT_MODES:
        problem("policy.containment",
                f"expected one of {', '.join(CONTAINMENT_MODES)}{did_you_mean(mode, CONTAINMENT_MODES)}")
        mode = "never"
    rate = raw.get("containment_rate", 5)
    if not isinstance(rate, int) or isinstance(rate, bool) or rate < 1:
        problem("policy.containment_rate", "expected a whole number of stores per minute, at least 1")
        rate = 5
    return Policy(_skip(raw.get("skip") or [], problem, check_ids),
                  _severity(raw.get("severity") or {}, problem, check_ids),
                  _waivers(raw.get("waivers") or [], problem), mode, rate,
                  _require_tls(raw.get("require_tls"), problem))


def _require_tls(raw: Any, problem: Problem) -> tuple[TlsRule, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):  # one level for every store
        raw = [{"level": raw}]
    if not isinstance(raw, list):
        problem("policy.require_tls", "expected a level (verified, encrypted) or a list of {tags, store, level}")
        return ()
    out = []
    for i, item in enumerate(raw):
        path = f"policy.require_tls[{i}]"
        if not isinstance(item, Mapping) or item.get("level") not in TLS_LEVELS:
            problem(path, f"expected {{tags: {{…}}, store: glob, level: {' | '.join(TLS_LEVELS)}}}")
            continue
        unknown = set(item) - {"tags", "store", "level"}
        if unknown:
            problem(f"{path}.{sorted(unknown)[0]}", "unknown key (tags, store, level)")
        tags = item.get("tags") or {}
        if not isinstance(tags, Mapping):
            problem(f"{path}.tags", "expected a mapping")
            continue
        out.append(TlsRule(str(item["level"]), MappingProxyType({str(k): str(v) for k, v in tags.items()}),
                           str(item.get("store", "*"))))
    return tuple(out)


def _check_patterns(patterns: list[Any], path: str, problem: Problem, check_ids: set[str] | None) -> None:
    for j, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            problem(f"{path}[{j}]", "expected a check id or glob (e.g. *.no-audit)")
        elif check_ids is not None and not any(fnmatch.fnmatchcase(c, pattern) for c in check_ids):
            problem(f"{path}[{j}]", f"matches no check{did_you_mean(pattern, check_ids)} (see `piiguard list checks`)")


def _skip(raw: Any, problem: Problem, check_ids: set[str] | None = None) -> tuple[SkipRule, ...]:
    if not isinstance(raw, list):
        problem("policy.skip", "expected a list")
        return ()
    out = []
    for i, item in enumerate(raw):
        path = f"policy.skip[{i}]"
        if not isinstance(item, Mapping):
            problem(path, "expected {tags: {…}, checks: [patterns]}")
            continue
        unknown_keys(item, ("tags", "checks"), path, problem)
        if not isinstance(item.get("checks"), list):
            problem(f"{path}.checks", "required: a list of check ids or globs (e.g. *.no-audit)")
            continue
        _check_patterns(item["checks"], f"{path}.checks", problem, check_ids)
        tags = item.get("tags") or {}
        if not isinstance(tags, Mapping):
            problem(f"{path}.tags", "expected a mapping")
            continue
        out.append(SkipRule(MappingProxyType({str(k): str(v) for k, v in tags.items()}),
                            tuple(str(c) for c in item["checks"])))
    return tuple(out)


def _severity(raw: Any, problem: Problem, check_ids: set[str] | None) -> Mapping[str, Severity]:
    if not isinstance(raw, Mapping):
        problem("policy.severity", "expected a mapping of check id to severity")
        return MappingProxyType({})
    out = {}
    levels = [s.value for s in Severity]
    for check_id, level in raw.items():
        if check_ids is not None and check_id not in check_ids:
            problem(key_path("policy.severity", check_id),
                    f"unknown check{did_you_mean(check_id, check_ids)} (see `piiguard list checks`)")
        elif level not in levels:
            problem(key_path("policy.severity", check_id),
                    f"expected one of {', '.join(levels)}{did_you_mean(level, levels)}")
        else:
            out[str(check_id)] = Severity(level)
    return MappingProxyType(out)


def _waivers(raw: Any, problem: Problem) -> tuple[Waiver, ...]:
    if not isinstance(raw, list):
        problem("policy.waivers", "expected a list")
        return ()
    out = []
    for i, item in enumerate(raw):
        path = f"policy.waivers[{i}]"
        if not isinstance(item, Mapping):
            problem(path, "expected {check, store, reason, expires}")
            continue
        unknown_keys(item, ("check", "store", "reason", "expires"), path, problem)
        expires = item.get("expires")
        if isinstance(expires, str):
            try:
                expires = date.fromisoformat(expires)
            except ValueError:
                expires = None
        ok = True
        if not isinstance(item.get("check"), str):
            problem(f"{path}.check", "required: a check id or glob")
            ok = False
        if not isinstance(item.get("reason"), str) or not item["reason"].strip():
            problem(f"{path}.reason", "required: why the risk is accepted")
            ok = False
        if not isinstance(expires, date):
            problem(f"{path}.expires", "required: a date (YYYY-MM-DD); waivers do not last forever")
            ok = False
        if ok and isinstance(expires, date):
            out.append(Waiver(item["check"], str(item.get("store", "*")), item["reason"].strip(), expires))
    return tuple(out)
