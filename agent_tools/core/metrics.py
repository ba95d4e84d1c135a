"""Prometheus metrics of one server instance (its own registry: no process-wide state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from policies import Policy

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
WAIT_BUCKETS = (0.001, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
FIRST_AUDIO_BUCKETS = (0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class Metrics:
    """Calls, errors by code, latency, queue depth and audio seconds in and out."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "speech_tool_calls",
            "Tool calls by tool and outcome.",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "speech_tool_errors", "Tool errors by tool and code.", ["tool", "code"], registry=self.registry
        )
        self.latency = Histogram(
            "speech_tool_latency_seconds",
            "Tool call latency.",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "speech_engine_queue_depth",
            "Calls waiting for an engine slot.",
            ["engine"],
            registry=self.registry,
        )
        self.in_use = Gauge(
            "speech_engine_slots_in_use", "Engine slots running work.", ["engine"], registry=self.registry
        )
        self.queue_wait = Histogram(
            "speech_engine_queue_wait_seconds",
            "Time work waited for an engine slot (`sentences`: a sentence for a synthesis slot).",
            ["engine"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.first_audio = Histogram(
            "speech_time_to_first_audio_seconds",
            "From a streamed utterance's start to its first audio ready to send.",
            ["surface"],
            buckets=FIRST_AUDIO_BUCKETS,
            registry=self.registry,
        )
        self.real_time_factor = Histogram(
            "speech_real_time_factor",
            "Engine seconds per audio second of each call.",
            ["engine"],
            buckets=RTF_BUCKETS,
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "speech_audio_seconds",
            "Audio seconds heard (in) and spoken (out).",
            ["direction"],
            registry=self.registry,
        )
        self.turn_ends = Counter(
            "speech_live_turn_ends",
            "Live turns ended, by why: silence, semantic (the turn model judged it finished), timeout "
            "(judged unfinished, the wait ran out), commit (the client), max_length.",
            ["reason"],
            registry=self.registry,
        )
        self.audit_writable = Gauge(
            "speech_audit_writable",
            "1 while audit records are written, 0 while they cannot be.",
            registry=self.registry,
        )
        self.audit_lost = Counter(
            "speech_audit_records_lost", "Audit records that could not be written.", registry=self.registry
        )
        self._audit_lost_seen = 0

    def sample_audit(self, policy: Policy) -> None:
        """Read the audit sink's state into the audit metrics."""
        self.audit_writable.set(1 if policy.audit_writable else 0)
        lost = int(getattr(policy.audit_sink, "lost", 0))
        if lost > self._audit_lost_seen:
            self.audit_lost.inc(lost - self._audit_lost_seen)
            self._audit_lost_seen = lost

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
