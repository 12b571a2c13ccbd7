"""The gateway's Prometheus metrics (GET /metrics): answers and their latency per model and
colour, failovers, which colour is live, events posted, answer-log records dropped."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .routing import COLOURS, Route

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "aisle_gateway_requests", "Answers by model, colour and status.",
            ["model", "colour", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "aisle_gateway_request_seconds", "Time to answer, through the gateway.",
            ["model", "colour"], registry=self.registry, buckets=LATENCY_BUCKETS_S,
        )  # fmt: skip
        self.failovers = Counter(
            "aisle_gateway_failovers", "Requests answered by the other colour.", ["model"],
            registry=self.registry,
        )  # fmt: skip
        self.events_posted = Counter(
            "aisle_gateway_events", "Events posted to /events, accepted or rejected.",
            ["outcome"], registry=self.registry,
        )  # fmt: skip
        self.answers_dropped = Counter(
            "aisle_answer_log_dropped", "Answer-log records dropped: the queue was full while "
            "the broker was down.", registry=self.registry,
        )  # fmt: skip
        self.live = Gauge(
            "aisle_gateway_live", "1 for the colour that takes a model's traffic.",
            ["model", "colour"], registry=self.registry,
        )  # fmt: skip

    def answered(self, model: str, colour: str, status: int, ms: float) -> None:
        self.requests.labels(model, colour, str(status)).inc()
        self.latency.labels(model, colour).observe(ms / 1000)

    def events(self, outcome: str, n: int) -> None:
        if n:
            self.events_posted.labels(outcome).inc(n)

    def failed_over(self, model: str) -> None:
        self.failovers.labels(model).inc()

    def show_live(self, routes: dict[str, Route]) -> None:
        for model, route in routes.items():
            for colour in COLOURS:
                self.live.labels(model, colour).set(1 if route.active == colour else 0)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
