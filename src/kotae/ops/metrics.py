"""Prometheus metrics (`GET /metrics`). Counters and histograms are updated as requests
pass; engine and job states are read when Prometheus scrapes, so they are never stale."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
Engines = Callable[[], dict[str, dict[str, Any]]]
Jobs = Callable[[], dict[str, dict[str, int]]]
ENGINE_STATES = ("starting", "ready", "restarting", "unavailable", "stopped")
# A fine-tuned model's name holds its project's name and suffix ("ft:base:project:suffix:id").
FINE_TUNED = re.compile(r"ft:[^'\"\s]+")


def public_name(text: str) -> str:
    """A name as the ops routes (/metrics, /ready), which need no project's key, show it:
    each fine-tuned model becomes an opaque label, so no tenant's names show."""
    return FINE_TUNED.sub(
        lambda m: "fine-tuned-" + hashlib.sha256(m.group().encode()).hexdigest()[:12], text
    )


class Metrics:
    """One set per app (a registry of its own, so several apps in one process never clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kotae_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kotae_request_duration_seconds",
            "Time from request to the end of the answer (a stream's last event).",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "kotae_tokens",
            "Tokens by model and direction (input, output) of finished responses and chat "
            "completions.",
            ["model", "direction"],
            registry=self.registry,
        )
        self.tools_unavailable = Counter(
            "kotae_tools_unavailable",
            "Built-in tools a request offered that this server has not set up (no search "
            "engine, no image model): left off the model's menu.",
            ["tool"],
            registry=self.registry,
        )
        self.queue_full = Counter(
            "kotae_queue_full",
            "429 answers because an engine's queue held its limit.",
            ["engine"],
            registry=self.registry,
        )

    def watch(
        self,
        engines: Callable[[], dict[str, dict[str, Any]]],
        jobs: Callable[[], dict[str, dict[str, int]]],
    ) -> None:
        """Read engine states and job counts at every scrape."""
        self.registry.register(_Live(engines, jobs))

    def usage(self, model: str, input_tokens: int, output_tokens: int) -> None:
        self.tokens.labels(public_name(model), "input").inc(input_tokens)
        self.tokens.labels(public_name(model), "output").inc(output_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Live(Collector):
    def __init__(self, engines: Engines, jobs: Jobs) -> None:
        self._engines = engines
        self._jobs = jobs

    def collect(self) -> Iterator[Metric]:
        engines = self._engines()
        depth = GaugeMetricFamily(
            "kotae_engine_queue_depth",
            "Requests an engine holds (running and waiting).",
            labels=["engine"],
        )
        state = GaugeMetricFamily(
            "kotae_engine_state", "1 for the state an engine is in.", labels=["engine", "state"]
        )
        restarts = CounterMetricFamily(
            "kotae_engine_restarts",
            "Times an engine was restarted after it died.",
            labels=["engine"],
        )
        generated = CounterMetricFamily(
            "kotae_engine_generated_tokens",
            "Tokens an engine generated (rate() of it is tokens per second).",
            labels=["engine"],
        )
        for model, info in engines.items():
            name = public_name(model)
            depth.add_metric([name], float(info.get("in_flight", 0)))
            for s in ENGINE_STATES:
                state.add_metric([name, s], 1.0 if info.get("state") == s else 0.0)
            restarts.add_metric([name], float(info.get("restarts", 0)))
            generated.add_metric([name], float(info.get("generated_tokens", 0)))
        yield from (depth, state, restarts, generated)
        jobs = GaugeMetricFamily(
            "kotae_jobs", "Background work by kind and status.", labels=["kind", "status"]
        )
        for kind, counts in self._jobs().items():
            for status, n in counts.items():
                jobs.add_metric([kind, status], float(n))
        yield jobs
