"""OpenSearch / Elasticsearch protocol checks.

Outside checks send plain HTTP ``GET`` requests, in TLS when the port speaks it, with no credentials
(or a few documented default ones): nothing that writes. Inside checks log in as the store's user
(OpenSearch security: a user with ``all_access`` or ``security_rest_api_access``, which reading the
security configuration needs) and read node settings, plugins, bound addresses and the security
plugin's configuration. One reading of the same settings serves both engines: OpenSearch's security
plugin (``plugins.security.*``) and Elasticsearch's X-Pack (``xpack.security.*``). The tests run
OpenSearch 2.19 with and without its security plugin; the Elasticsearch branches are written from
its documented settings and have not run against an Elasticsearch server here.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from typing import TYPE_CHECKING, Any

from piiguard.checks.base import Check, Outcome, ProtocolError, Target, basic_auth, checks, failed, passed, targets
from piiguard.checks.cached import cached_property
from piiguard.connectors.opensearch import errors
from piiguard.engines.opensearch import client
from piiguard.model import Severity, Vantage
from piiguard.registry import driver

if TYPE_CHECKING:
    from opensearchpy import OpenSearch
    from opensearchpy import exceptions as oe
else:  # imported on first use: starting the CLI must not load every engine's driver
    oe = driver("opensearchpy.exceptions")

DEFAULT_CREDENTIALS = (("admin", "admin"), ("elastic", "changeme"), ("elastic", "elastic"), ("kibana", "changeme"))
RANSOM_PATTERNS = ("*-meow", "read_me*", "readme*", "how_to_recover*", "recover_your_data*", "warning",
                   "please_read*", "hacked*")
SECURITY_PLUGINS = ("opensearch-security", "opendistro_security")


class OpenSearchTarget(Target):
    default_port = 9200

    def anonymous(self, path: str) -> int:
        return self.verdict(self.http("GET", path, limit=0)[0])

    def login(self, user: str, password: str) -> bool:
        """True when ``GET /`` with these credentials is answered 200 (refused: 401 or 403)."""
        return self.verdict(self.http("GET", "/", basic_auth(user, password), limit=0)[0]) == 200

    def verdict(self, status: int) -> int:
        """The status when it grants (200) or refuses (401, 403); anything else decides nothing — a
        500 is not a refusal — and makes the store unreachable for the checks, never a pass."""
        if status not in (200, 401, 403):
            raise ProtocolError(self.store.name, f"HTTP {status}: neither granted nor refused, not as "
                                                 "OpenSearch/Elasticsearch answers", hint="check the address and port")
        return status

    @cached_property
    def session(self) -> OpenSearch:
        return client(self.store, self.timeout)

    def get(self, path: str) -> Any:
        with errors(self.store):
            return self.session.transport.perform_request("GET", path)

    @cached_property
    def distribution(self) -> str:
        info = self.get("/")
        return str(info.get("version", {}).get("distribution") or "elasticsearch")

    @cached_property
    def major(self) -> int:
        return int(str(self.get("/").get("version", {}).get("number", "0")).split(".")[0])

    @cached_property
    def settings(self) -> dict[str, str]:
        """Every node's effective settings, flattened; the first node's value wins (one-node view)."""
        nodes = self.get("/_nodes/settings?flat_settings=true").get("nodes", {})
        out: dict[str, str] = {}
        for node in nodes.values():
            for key, value in node.get("settings", {}).items():
                out.setdefault(key, json.dumps(value) if isinstance(value, list) else str(value))
        return out

    @cached_property
    def security_plugin(self) -> bool:
        plugins = self.get("/_cat/plugins?format=json&h=component")
        return any(p.get("component") in SECURITY_PLUGINS for p in plugins)

    @cached_property
    def security_on(self) -> bool:
        if self.distribution == "opensearch":
            return self.security_plugin and self.settings.get("plugins.security.disabled", "false") != "true"
        value = self.settings.get("xpack.security.enabled")
        return value == "true" or (value is None and self.major >= 8)  # on by default since 8.0

    def security_config(self, section: str) -> dict[str, Any]:
        """OpenSearch security plugin REST API (``securityconfig``, ``audit``)."""
        try:
            reply = self.get(f"/_plugins/_security/api/{section}")
        except oe.NotFoundError:
            reply = self.get(f"/_opendistro/_security/api/{section}")  # before OpenSearch 1.0's rename
        return dict(reply.get("config", {}))


class OpenSearchCheck(Check[OpenSearchTarget]):
    engine = "opensearch"


@checks.register("opensearch.anonymous-access")
class AnonymousAccess(OpenSearchCheck):
    """The REST API answers without credentials.

    Risk: anyone who reaches the port lists the indices and reads or deletes every document — how
    most Elasticsearch leaks happen, and how the "meow" bot wiped thousands of clusters.
    Seen from outside: ``GET /``, ``GET /_cat/indices`` or a search (``size=0``: counts only)
    answered 200 instead of 401 or 403.
    Fix: enable security (OpenSearch security plugin; Elasticsearch ``xpack.security.enabled: true``)
    and keep anonymous access off.
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    anchors = ("nuclei: elasticsearch-unauth", "nmap: http-title")

    def run(self, target: OpenSearchTarget) -> Outcome:
        answered = [p for p in ("/", "/_cat/indices", "/_search?size=0") if target.anonymous(p) == 200]
        if answered:
            return failed(f"GET {' and GET '.join(answered)} answered 200 without credentials")
        return passed(f"GET / refused without credentials ({target.anonymous('/')})")


@checks.register("opensearch.default-credentials")
class DefaultCredentials(OpenSearchCheck):
    """A well-known default user and password is accepted.

    Risk: ``admin:admin`` (OpenSearch's demo configuration) and ``elastic:changeme`` (old
    Elasticsearch) are the first logins every scanner tries.
    Fix: change the built-in users' passwords (OpenSearch: ``internal_users.yml`` and
    ``securityadmin``; Elasticsearch: ``elasticsearch-reset-password``).
    """

    severity, vantage = Severity.CRITICAL, Vantage.OUTSIDE
    exposes = True
    frequent = False
    guesses = True
    anchors = ("nuclei: opensearch-default-login", "nuclei: elasticsearch-default-login")

    def run(self, target: OpenSearchTarget) -> Outcome:
        if target.anonymous("/") == 200:
            return passed("no password is asked for (see opensearch.anonymous-access)")
        accepted = [user for user, pw in DEFAULT_CREDENTIALS if target.login(user, pw)]
        if accepted:
            return failed(f"a default password was accepted for {', '.join(accepted)}")
        return passed(f"{len(DEFAULT_CREDENTIALS)} default logins refused")


@checks.register("opensearch.no-tls")
class NoTLS(OpenSearchCheck):
    """The REST API is served over plain HTTP.

    Risk: credentials (HTTP basic auth) and documents cross the network readable by anyone on path.
    Fix: OpenSearch ``plugins.security.ssl.http.enabled: true``; Elasticsearch
    ``xpack.security.http.ssl.enabled: true``.
    """

    severity, vantage = Severity.HIGH, Vantage.OUTSIDE

    def run(self, target: OpenSearchTarget) -> Outcome:
        if target.speaks_tls:
            return passed("the port completes a TLS handshake")
        return failed("the port speaks plain HTTP")


@checks.register("opensearch.security-disabled")
class SecurityDisabled(OpenSearchCheck):
    """The cluster runs without its security layer.

    Risk: no authentication, no authorisation, no audit: whoever reaches the port is an administrator.
    This is the setting an employee switched off in the incident piiguard was built for.
    Fix: OpenSearch: install and enable the security plugin (``plugins.security.disabled: false``);
    Elasticsearch: ``xpack.security.enabled: true``.
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE

    def run(self, target: OpenSearchTarget) -> Outcome:
        if target.security_on:
            return passed(f"{target.distribution} security is enabled")
        if target.distribution == "opensearch" and not target.security_plugin:
            return failed("the security plugin is not installed")
        return failed(f"security is disabled in the node settings ({target.distribution})")


@checks.register("opensearch.anonymous-role")
class AnonymousRole(OpenSearchCheck):
    """Anonymous authentication is configured.

    Risk: requests without credentials are served as an anonymous user with whatever its roles
    allow — often more than intended once roles change.
    Fix: OpenSearch ``config.dynamic.http.anonymous_auth_enabled: false`` (security config);
    Elasticsearch: remove ``xpack.security.authc.anonymous.roles``.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: OpenSearchTarget) -> Outcome:
        if not target.security_on:
            return passed("security is off, so every request is anonymous (see opensearch.security-disabled)")
        if target.distribution == "opensearch":
            http = target.security_config("securityconfig").get("dynamic", {}).get("http", {})
            if http.get("anonymous_auth_enabled"):
                return failed("anonymous_auth_enabled is true in the security configuration")
            return passed("anonymous_auth_enabled is false")
        roles = target.settings.get("xpack.security.authc.anonymous.roles")
        if roles:
            return failed(f"xpack.security.authc.anonymous.roles = {roles}")
        return passed("no anonymous roles")


@checks.register("opensearch.audit-off")
class AuditOff(OpenSearchCheck):
    """Audit logging is off.

    Risk: after an exposure nobody can say who read what; the incident response must then assume
    everything was read.
    Fix: OpenSearch ``plugins.security.audit.type: internal_opensearch`` with the audit
    configuration enabled; Elasticsearch ``xpack.security.audit.enabled: true``. OpenSearch hides
    its security settings from the REST API, so the check looks for stored audit events: an
    external sink (log4j, webhook) is invisible to it and needs a policy waiver that names it.
    """

    severity, vantage = Severity.MEDIUM, Vantage.INSIDE

    def run(self, target: OpenSearchTarget) -> Outcome:
        if not target.security_on:
            return failed("security is off, and with it auditing")
        if target.distribution == "opensearch":
            # The plugin hides its settings from _nodes/settings, so the sink is seen by its output: the
            # internal_opensearch sink writes security-auditlog-* indices.
            if not target.security_config("audit").get("enabled", False):
                return failed("the audit configuration is disabled")
            rows = target.get("/_cat/indices/security-auditlog-*?format=json&h=index,docs.count")
            events = sum(int(r.get("docs.count") or 0) for r in rows)
            if events:
                return passed(f"audit enabled; {events:,} events in {len(rows)} security-auditlog index(es)")
            return failed("audit is enabled in the configuration but no audit events are stored; with an "
                          "external sink (log4j, webhook) this check cannot see them: waive it, naming the sink")
        if target.settings.get("xpack.security.audit.enabled") != "true":
            return failed("xpack.security.audit.enabled is not true")
        return passed("xpack.security.audit.enabled is true")


@checks.register("opensearch.bind-public")
class BindPublic(OpenSearchCheck):
    """The REST API is bound to a non-loopback address without an IP filter.

    Risk: every network the host is on can reach the port, including ones added later.
    Fix: ``network.host`` / ``http.host`` on loopback and the application network only; on
    Elasticsearch also ``xpack.security.http.filter.allow``. OpenSearch has no IP filter of its own:
    use a firewall or security group.
    """

    severity, vantage = Severity.HIGH, Vantage.INSIDE

    def run(self, target: OpenSearchTarget) -> Outcome:
        nodes = target.get("/_nodes/_local/http").get("nodes", {})
        bound = [a for n in nodes.values() for a in n.get("http", {}).get("bound_address", [])]
        public = [a for a in bound if not _loopback(a)]
        if not public:
            return passed(f"bound to {', '.join(bound) or 'nothing'}")
        if target.settings.get("xpack.security.http.filter.enabled") == "true" and \
                target.settings.get("xpack.security.http.filter.allow"):
            return passed(f"bound to {', '.join(public)} behind xpack.security.http.filter")
        return failed(f"bound to {', '.join(public)} with no IP filter")


@checks.register("opensearch.ransom-indices")
class RansomIndices(OpenSearchCheck):
    """An index is named like a ransom note.

    Risk: ``*-meow`` indices (the meow bot) and ``read_me`` / ``how_to_recover`` indices are left by
    attackers who already wiped or copied the data: this is an incident, not a misconfiguration.
    Fix: treat it as a breach (``piiguard`` respond); restore from a snapshot; close the cluster.
    """

    severity, vantage = Severity.CRITICAL, Vantage.INSIDE

    def run(self, target: OpenSearchTarget) -> Outcome:
        rows = target.get("/_cat/indices?format=json&h=index&expand_wildcards=all")
        names = [r["index"] for r in rows]
        hits = [n for n in names if any(fnmatch.fnmatch(n.lower(), p) for p in RANSOM_PATTERNS)]
        if hits:
            return failed(f"{len(hits)} index(es) named like ransom notes: {', '.join(hits[:5])}")
        return passed(f"{len(names)} index names look ordinary")


def _loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


targets.add("opensearch", OpenSearchTarget)
