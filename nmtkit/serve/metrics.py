"""The server's Prometheus metrics (`GET /metrics`), one registry per app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "nmtkit_requests", "Translate requests by outcome", ["outcome"], registry=r
        )
        self.latency = Histogram(
            "nmtkit_request_seconds",
            "Translate request latency",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.batch_sentences = Histogram(
            "nmtkit_batch_sentences",
            "Sentences per batched search",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.batch_tokens = Histogram(
            "nmtkit_batch_tokens",
            "Source tokens per batched search",
            buckets=(16, 64, 256, 1024, 2048, 4096, 8192, 16384, 65536),
            registry=r,
        )
        self.queue_depth = Gauge("nmtkit_queue_depth", "Waiting requests", ["model"], registry=r)
        self.responses = Counter(
            "nmtkit_responses",
            "Answers by path (the app's own; anything else is 'other') and status",
            ["path", "status"],
            registry=r,
        )
        self.restarts = Counter(
            "nmtkit_worker_restarts",
            "Times a model's worker was started again after a failure",
            ["model"],
            registry=r,
        )

    def batch(self, sentences: int, tokens: int) -> None:
        self.batch_sentences.observe(sentences)
        self.batch_tokens.observe(tokens)
