"""OpenTelemetry traces: on when the standard `OTEL_*` variables ask for an OTLP exporter, off (a
no-op tracer, no cost) otherwise. Built once with the runtime and passed down; spans carry request
ids, principals, voices, formats, sizes and timings — never text, transcripts, audio or tokens."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

INSTRUMENTATION = "speech-tools"
_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class Tracing:
    """The tracer of one process, and how to flush what it holds at shutdown."""

    tracer: Tracer
    provider: Any = None  # the SDK's TracerProvider when exporting

    @classmethod
    def off(cls) -> Tracing:
        """No traces: every span is a no-op."""
        return cls(trace.NoOpTracer())

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Tracing:
        """Export over OTLP (HTTP/protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` or
        `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set or `OTEL_TRACES_EXPORTER` is `otlp`, unless
        `OTEL_SDK_DISABLED` is true or `OTEL_TRACES_EXPORTER` is `none`; otherwise off. The SDK
        reads the rest (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, headers, sampler)."""
        exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        )
        disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
        if disabled or exporter == "none" or not (endpoint or exporter == "otlp"):
            return cls.off()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", INSTRUMENTATION)})
        provider = TracerProvider(resource=resource)
        traces = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        url = traces or (f"{base.rstrip('/')}/v1/traces" if base else None)  # None: the SDK's default
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        return cls(provider.get_tracer(INSTRUMENTATION), provider)

    @classmethod
    def to(cls, provider: Any) -> Tracing:
        """Spans to an SDK `TracerProvider` made elsewhere (tests use an in-memory exporter)."""
        return cls(provider.get_tracer(INSTRUMENTATION), provider)

    def shutdown(self) -> None:
        """Flush and stop the exporter (at the end of the server)."""
        if self.provider is not None:
            self.provider.shutdown()

    @contextmanager
    def span(self, name: str, attributes: Attributes = None) -> Iterator[Span]:
        """A span under the current one for the block (an exception is recorded on it)."""
        with self.tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span

    @contextmanager
    def incoming(
        self, name: str, carrier: Mapping[str, Any] | None, kind: SpanKind, attributes: Attributes = None
    ) -> Iterator[Span]:
        """A span for work a client asked for, child of the W3C `traceparent` in `carrier` (HTTP
        headers, or an MCP request's `_meta`) when it holds one, else of the current span."""
        parent = None
        if carrier and any(str(k).lower() == "traceparent" for k in carrier):
            parent = _PROPAGATOR.extract(carrier, getter=_LOWER)
        token = otel_context.attach(parent) if parent is not None else None
        try:
            with self.tracer.start_as_current_span(name, kind=kind, attributes=attributes) as span:
                yield span
        finally:
            if token is not None:
                otel_context.detach(token)


class _LowerGetter(Getter[Mapping[str, Any]]):
    """Reads a carrier whatever the case of its keys (HTTP headers arrive lower-cased)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        for name, value in carrier.items():
            if str(name).lower() == key.lower():
                return [str(value)] if not isinstance(value, list | tuple) else [str(v) for v in value]
        return None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [str(k) for k in carrier]


_LOWER = _LowerGetter()
