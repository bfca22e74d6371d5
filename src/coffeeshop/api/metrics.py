"""Prometheus metrics: requests per route (count, latency), cache use, and the pipeline's state.

Request metrics live in prometheus-client metrics; with several worker processes
(`PROMETHEUS_MULTIPROC_DIR` set, as `coffeeshop serve --workers N` does) they are aggregated
over all workers at scrape time. The pipeline's state (data version, applied and quarantined
totals, freshness) is read from the database by the worker that answers the scrape.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import Message, Receive, Scope, Send

from coffeeshop.api.middleware import HttpMiddleware

ROUTE_KEY = "coffeeshop.route"  # set in the ASGI scope by whoever knows the route template
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, *, multiprocess: bool | None = None) -> None:
        if multiprocess is None:
            multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.multiprocess = multiprocess
        # In multiprocess mode the values go to files, and a registry is built per scrape.
        registry = None if multiprocess else CollectorRegistry(auto_describe=True)
        self.registry = registry
        self.requests = Counter(
            "coffeeshop_api_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "coffeeshop_api_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.cache = Counter(
            "coffeeshop_api_cache_lookups",
            "Data responses served from the in-memory cache (hit) or read from the database "
            "(miss).",
            ["result"],
            registry=registry,
        )
        self.cache_hit = self.cache.labels("hit")
        self.cache_miss = self.cache.labels("miss")
        self.state = StateCollector()
        if registry is not None:
            registry.register(self.state)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self, status: dict[str, Any] | None, *, accept: str | None) -> tuple[bytes, str]:
        """The exposition text (or OpenMetrics, when `accept` asks for it) and its type."""
        self.state.status = status
        registry = self.registry
        if registry is None:
            from prometheus_client import multiprocess

            registry = CollectorRegistry(auto_describe=True)
            multiprocess.MultiProcessCollector(registry)
            registry.register(self.state)
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type


class StateCollector(Collector):
    """The pipeline's state from the last `/pipeline` read (None: the database did not answer)."""

    def __init__(self) -> None:
        self.status: dict[str, Any] | None = None

    def collect(self) -> Iterator[Metric]:
        status = self.status
        yield GaugeMetricFamily(
            "coffeeshop_database_up",
            "1 when the analysis database answered the last read, else 0.",
            value=0 if status is None else 1,
        )
        if status is None:
            return
        totals = status["totals"]
        yield GaugeMetricFamily(
            "coffeeshop_data_version",
            "Commits that changed the tables so far (cs_state.data_version).",
            value=status["data_version"],
        )
        since = totals["seconds_since_commit"]
        if since is not None:
            yield GaugeMetricFamily(
                "coffeeshop_freshness_seconds",
                "Seconds since the last committed batch of any source.",
                value=since,
            )
        yield CounterMetricFamily(
            "coffeeshop_receipts_applied",
            "Events applied to the tables, all sources.",
            value=totals["applied"],
        )
        yield CounterMetricFamily(
            "coffeeshop_receipts_quarantined",
            "Events quarantined, all sources.",
            value=totals["quarantined"],
        )
        yield CounterMetricFamily(
            "coffeeshop_batches", "Batches committed, all sources.", value=totals["batches"]
        )
        fresh = GaugeMetricFamily(
            "coffeeshop_source_freshness_seconds",
            "Seconds since the source's last committed batch.",
            labels=["source"],
        )
        behind = GaugeMetricFamily(
            "coffeeshop_source_behind",
            "What the source still held beyond its last batch when it was read (bytes of a file).",
            labels=["source"],
        )
        for source in status["sources"]:
            fresh.add_metric([source["source"]], source["seconds_since_commit"])
            if source["behind"] is not None:
                behind.add_metric([source["source"]], source["behind"])
        yield fresh
        yield behind


@dataclass
class MetricsMiddleware(HttpMiddleware):
    """Counts and times every HTTP request by route template (never by raw path)."""

    metrics: Metrics

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get(ROUTE_KEY) or getattr(scope.get("route"), "path", None)
            self.metrics.observe(
                route or "unmatched", scope["method"], status, time.perf_counter() - started
            )
