"""Optional OpenTelemetry tracing of FastAPI and httpx: on only when a standard OTEL_*
environment variable asks for it, and only then imported (the `otel` extra installs it)."""

from __future__ import annotations

import logging
import os
from typing import Any

from comfygen.comfy import rest

log = logging.getLogger("comfygen.server")

OTEL_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
             "OTEL_SERVICE_NAME", "OTEL_TRACES_EXPORTER")
EXCLUDED_URLS = "health,ready,metrics"


def wanted() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "none":
        return False
    return any(os.environ.get(name) for name in OTEL_VARS)


def install(app: Any, exporter: Any = None) -> bool:
    """Instrument `app` and httpx when OTEL_* variables are set; `exporter` replaces the OTLP
    (or `OTEL_TRACES_EXPORTER=console`) exporter, for tests."""
    if not wanted() and exporter is None:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        log.warning("OTEL_* is set but OpenTelemetry is not installed: "
                    "pip install 'comfygen[otel]'; tracing stays off")
        return False
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", "comfygen")}))
        trace.set_tracer_provider(provider)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider,
                                       excluded_urls=EXCLUDED_URLS)
    if not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    rest.trace_through_httpx()  # POST /prompt too (it takes aiohttp when tracing is off)
    log.info("OpenTelemetry tracing on (FastAPI and httpx)")
    return True
