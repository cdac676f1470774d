"""Prometheus metrics and a health endpoint for a supervisor.

``/metrics``: probes and probe failures per store, open findings, open exposure windows, the
change→alert latency (from the cycle that saw a change to the sink that accepted the alert), and
failed alert deliveries per sink (``piiguard_alert_delivery_failures_total``), discovery sweeps by
result and their duration (``piiguard_discovery_sweeps_total{result=ok|failed}``).
``/healthz``: 200 while cycles keep coming, 503 once the last one is older than three intervals.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from piiguard.model import Finding, Status
from piiguard.registry import driver

if TYPE_CHECKING:
    import prometheus_client as prom
else:  # imported on first use: `piiguard --help` does not need it
    prom = driver("prometheus_client")

LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


class Metrics:
    def __init__(self, interval: float = 5.0) -> None:
        self.registry = prom.CollectorRegistry()
        self.interval = interval
        self.last_cycle = 0.0
        self.probes = prom.Counter("piiguard_probes", "Checks run", ["store"], registry=self.registry)
        self.failures = prom.Counter("piiguard_probe_failures", "Checks that failed or could not decide",
                                ["store", "status"], registry=self.registry)
        self.open_findings = prom.Gauge("piiguard_open_findings", "Failing checks now", registry=self.registry)
        self.open_exposures = prom.Gauge("piiguard_open_exposures", "Stores exposed now", registry=self.registry)
        self.latency = prom.Histogram("piiguard_change_to_alert_seconds", "From the cycle that saw a change to the "
                                 "sink that accepted its alert", buckets=LATENCY_BUCKETS, registry=self.registry)
        self.delivery_failures = prom.Counter("piiguard_alert_delivery_failures", "Alert sends a sink refused or "
                                              "that did not arrive (each is retried)", ["sink"],
                                              registry=self.registry)
        self.cycle_seconds = prom.Histogram("piiguard_cycle_seconds", "Duration of a watch cycle",
                                            registry=self.registry)
        # discovery.every: sweeps done (result ok / failed) and how long each took
        self.sweeps = prom.Counter("piiguard_discovery_sweeps", "Discovery sweeps of the allowed networks",
                                   ["result"], registry=self.registry)
        self.sweep_seconds = prom.Histogram("piiguard_discovery_sweep_seconds", "Duration of a discovery sweep",
                                            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800), registry=self.registry)

    def cycle(self, findings: Sequence[Finding], seconds: float, open_exposures: int) -> None:
        for f in findings:
            self.probes.labels(f.store).inc()
            if f.status in (Status.FAIL, Status.ERROR):  # not-applicable is a decided answer, not a failure
                self.failures.labels(f.store, f.status.value).inc()
        self.open_findings.set(sum(1 for f in findings if f.status is Status.FAIL))
        self.open_exposures.set(open_exposures)
        self.cycle_seconds.observe(seconds)
        self.last_cycle = time.monotonic()

    def healthy(self) -> bool:
        return self.last_cycle > 0 and time.monotonic() - self.last_cycle < 3 * max(self.interval, 1.0)


def serve(metrics: Metrics, host: str, port: int) -> ThreadingHTTPServer:
    """Serve /metrics and /healthz in a daemon thread; returns the server (``shutdown()`` to stop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, kind, code = prom.generate_latest(metrics.registry), prom.CONTENT_TYPE_LATEST, 200
            elif self.path == "/healthz":
                ok = metrics.healthy()
                body, kind, code = json.dumps({"ok": ok}).encode(), "application/json", 200 if ok else 503
            else:
                body, kind, code = b"not found\n", "text/plain", 404
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="piiguard-metrics", daemon=True).start()
    return server
