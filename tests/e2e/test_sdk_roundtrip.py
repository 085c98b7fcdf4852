"""End to end with the real OpenTelemetry SDK and exporter over HTTP: what an instrumented app sends comes back.

Two services (two TracerProviders, as two processes would have) propagate context through W3C traceparent headers;
the OTLP/HTTP protobuf exporter posts to the live server; the read API must return the same tree. OTLP/JSON with
hex IDs, as the Collector's JSON exporter writes it, is posted over HTTP too.
"""

from __future__ import annotations

import gzip
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from rest_framework.test import APIClient

from tests.conftest import now_ns

KINDS = {
    SpanKind.INTERNAL: "INTERNAL",
    SpanKind.SERVER: "SERVER",
    SpanKind.CLIENT: "CLIENT",
    SpanKind.PRODUCER: "PRODUCER",
    SpanKind.CONSUMER: "CONSUMER",
}
STATUSES = {StatusCode.UNSET: "UNSET", StatusCode.OK: "OK", StatusCode.ERROR: "ERROR"}


class Recording(SpanExporter):
    """Wraps the real exporter: keeps what was sent and every export result, so a failed export fails the test."""

    def __init__(self, exporter: OTLPSpanExporter) -> None:
        self.exporter = exporter
        self.spans: list[ReadableSpan] = []
        self.results: list[SpanExportResult] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        result = self.exporter.export(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def provider(
    live_server: Any, token: str, service: str, *, batch: bool, compression: Compression
) -> tuple[TracerProvider, Recording]:
    exporter = Recording(
        OTLPSpanExporter(
            endpoint=f"{live_server.url}/v1/traces",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            compression=compression,
        )
    )
    tracer_provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment": "e2e"})
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return tracer_provider, exporter


@pytest.fixture
def two_services(
    live_server: Any, ingest_token: str
) -> Iterator[tuple[TracerProvider, Recording, TracerProvider, Recording]]:
    frontend, frontend_exporter = provider(
        live_server, ingest_token, "frontend", batch=False, compression=Compression.NoCompression
    )
    backend, backend_exporter = provider(
        live_server, ingest_token, "payments", batch=True, compression=Compression.Gzip
    )
    yield frontend, frontend_exporter, backend, backend_exporter
    frontend.shutdown()
    backend.shutdown()


def read_trace(api: APIClient, trace_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/traces/{trace_id}")
    assert response.status_code == 200, response.content
    return orjson.loads(response.content)


def plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """SDK attributes as they read back from JSON: sequences become lists."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in (attributes or {}).items()}


def test_sdk_spans_of_two_services_round_trip_with_the_same_tree(
    two_services: tuple[TracerProvider, Recording, TracerProvider, Recording], api: APIClient
) -> None:
    frontend, frontend_exporter, backend, backend_exporter = two_services
    web = frontend.get_tracer("shop.web", "1.2.3")
    pay = backend.get_tracer("shop.payments", "0.9.0")
    propagator = TraceContextTextMapPropagator()

    with web.start_as_current_span("warm cache") as unrelated:
        pass  # a span of another trace, linked from the payment below
    with web.start_as_current_span(
        "GET /checkout",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.route": "/checkout", "cart.items": 3, "cart.total": 42.5},
    ) as root:
        root.add_event("cart loaded", {"items": 3, "skus": ["a-1", "b-2"], "vip": True})
        with web.start_as_current_span("POST /pay", kind=SpanKind.CLIENT, attributes={"peer.service": "payments"}):
            headers: dict[str, str] = {}
            propagator.inject(headers)
            # ...the payments process receives the request and continues the trace from its headers.
            incoming = propagator.extract(headers)
            with pay.start_as_current_span(
                "POST /pay",
                context=incoming,
                kind=SpanKind.SERVER,
                attributes={"http.response.status_code": 402, "http.route": "/pay"},
            ) as server:
                with pay.start_as_current_span(
                    "charge card",
                    links=[Link(unrelated.get_span_context(), {"link.reason": "cache"})],
                    attributes={"payment.provider": "acme", "amount.cents": 4250},
                ) as charge:
                    charge.record_exception(ValueError("card declined"))
                    charge.set_status(Status(StatusCode.ERROR, "card declined"))
                server.set_status(Status(StatusCode.ERROR))
        with web.start_as_current_span("enqueue receipt", kind=SpanKind.PRODUCER):
            pass
        root.set_status(Status(StatusCode.OK))

    assert frontend.force_flush() and backend.force_flush()
    assert frontend_exporter.results and set(frontend_exporter.results) == {SpanExportResult.SUCCESS}
    assert backend_exporter.results and set(backend_exporter.results) == {SpanExportResult.SUCCESS}

    trace_id = format(root.get_span_context().trace_id, "032x")
    sent = [
        span
        for span in frontend_exporter.spans + backend_exporter.spans
        if format(span.context.trace_id, "032x") == trace_id
    ]
    assert len(sent) == 5

    trace = read_trace(api, trace_id)
    assert trace["span_count"] == 5
    assert trace["error_count"] == 2
    assert trace["services"] == ["frontend", "payments"]
    assert (trace["root_service"], trace["root_name"]) == ("frontend", "GET /checkout")
    stored = {span["span_id"]: span for span in trace["spans"]}
    assert set(stored) == {format(span.context.span_id, "016x") for span in sent}

    for span in sent:
        got = stored[format(span.context.span_id, "016x")]
        parent = format(span.parent.span_id, "016x") if span.parent else None
        assert got["parent_span_id"] == parent, span.name
        assert got["name"] == span.name
        assert got["kind"] == KINDS[span.kind]
        assert got["status_code"] == STATUSES[span.status.status_code]
        assert got["status_message"] == (span.status.description or "")
        assert span.start_time is not None and span.end_time is not None and span.instrumentation_scope is not None
        assert got["start_ns"] == str(span.start_time)
        assert got["duration_ns"] == span.end_time - span.start_time
        assert got["service_name"] == span.resource.attributes["service.name"]
        assert got["scope"] == {"name": span.instrumentation_scope.name, "version": span.instrumentation_scope.version}
        assert got["attributes"] == plain(span.attributes)
        assert [(e["name"], e["time_ns"]) for e in got["events"]] == [(e.name, str(e.timestamp)) for e in span.events]
        for event_got, event in zip(got["events"], span.events, strict=True):
            assert event_got.get("attributes", {}) == plain(event.attributes)
        assert [(link["trace_id"], link["span_id"], link["attributes"]) for link in got["links"]] == [
            (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x"), plain(link.attributes))
            for link in span.links
        ]
        resource = trace["resources"][got["resource_id"]]["attributes"]
        assert resource == plain(span.resource.attributes)

    by_name = {span["name"]: span for span in trace["spans"] if span["name"] != "POST /pay"}
    client_half, server_half = sorted((s for s in trace["spans"] if s["name"] == "POST /pay"), key=lambda s: s["kind"])
    assert (client_half["kind"], server_half["kind"]) == ("CLIENT", "SERVER")
    assert client_half["parent_span_id"] == by_name["GET /checkout"]["span_id"]
    assert server_half["parent_span_id"] == client_half["span_id"]  # continued across services from the headers
    assert by_name["charge card"]["parent_span_id"] == server_half["span_id"]
    assert by_name["charge card"]["events"][0]["name"] == "exception"
    assert by_name["charge card"]["events"][0]["attributes"]["exception.message"] == "card declined"


def test_exporter_retrying_the_same_batch_stores_it_once(live_server: Any, ingest_token: str, api: APIClient) -> None:
    tracer_provider, exporter = provider(
        live_server, ingest_token, "frontend", batch=True, compression=Compression.NoCompression
    )
    with tracer_provider.get_tracer("t").start_as_current_span("once") as span:
        pass
    assert tracer_provider.force_flush()
    assert exporter.export(exporter.spans) == SpanExportResult.SUCCESS  # as a retry after a lost response would
    tracer_provider.shutdown()
    trace = read_trace(api, format(span.get_span_context().trace_id, "032x"))
    assert trace["span_count"] == 1
    assert [s["name"] for s in trace["spans"]] == ["once"]


def test_exporter_with_a_wrong_token_fails_without_storing(live_server: Any, ingest_token: str, api: APIClient) -> None:
    tracer_provider, exporter = provider(
        live_server, "tui_ingest_wrong", "frontend", batch=False, compression=Compression.NoCompression
    )
    with tracer_provider.get_tracer("t").start_as_current_span("rejected") as span:
        pass
    tracer_provider.shutdown()
    assert exporter.results == [SpanExportResult.FAILURE]
    assert api.get(f"/api/v1/traces/{format(span.get_span_context().trace_id, '032x')}").status_code == 404


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def otlp_json_document(trace_id: str, start: int) -> dict[str, Any]:
    """OTLP/JSON with hex IDs, int64 times as strings and enums as integers, as the spec and Collector write it."""

    def span(span_id: str, parent: str, name: str, kind: int, offset: int, **extra: Any) -> dict[str, Any]:
        return {
            "traceId": trace_id,
            "spanId": span_id,
            "parentSpanId": parent,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(start + offset),
            "endTimeUnixNano": str(start + offset + 3_000_000),
            **extra,
        }

    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "json-shop"}},
                        {"key": "host.cpus", "value": {"intValue": "8"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "collector", "version": "0.100.0"},
                        "spans": [
                            span(
                                "a1a1a1a1a1a1a1a1",
                                "",
                                "GET /",
                                2,
                                0,
                                attributes=[
                                    {"key": "http.route", "value": {"stringValue": "/"}},
                                    {"key": "big", "value": {"intValue": "9007199254740993"}},
                                    {
                                        "key": "tags",
                                        "value": {
                                            "arrayValue": {"values": [{"stringValue": "x"}, {"boolValue": True}]}
                                        },
                                    },
                                ],
                                events=[{"timeUnixNano": str(start + 1), "name": "hello", "attributes": []}],
                                status={"code": 1},
                            ),
                            span(
                                "b2b2b2b2b2b2b2b2",
                                "a1a1a1a1a1a1a1a1",
                                "SELECT",
                                3,
                                1_000,
                                links=[{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}],
                                status={"code": 2, "message": "timeout"},
                                someFutureField={"ignored": True},
                            ),
                        ],
                    }
                ],
            }
        ]
    }


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_otlp_json_with_hex_ids_round_trips_over_http(
    live_server: Any, ingest_token: str, api: APIClient, compress: bool
) -> None:
    trace_id, start = secrets.token_hex(16), now_ns()
    body = json.dumps(otlp_json_document(trace_id, start)).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ingest_token}"}
    if compress:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    status, response_headers, content = post(f"{live_server.url}/v1/traces", body, headers)
    assert status == 200, content
    assert response_headers["Content-Type"] == "application/json"
    assert json.loads(content) == {}

    trace = read_trace(api, trace_id)
    spans = {span["span_id"]: span for span in trace["spans"]}
    assert set(spans) == {"a1a1a1a1a1a1a1a1", "b2b2b2b2b2b2b2b2"}
    root, child = spans["a1a1a1a1a1a1a1a1"], spans["b2b2b2b2b2b2b2b2"]
    assert root["parent_span_id"] is None
    assert child["parent_span_id"] == "a1a1a1a1a1a1a1a1"
    assert (root["kind"], child["kind"]) == ("SERVER", "CLIENT")
    assert (root["status_code"], child["status_code"], child["status_message"]) == ("OK", "ERROR", "timeout")
    assert root["start_ns"] == str(start)
    assert child["start_ns"] == str(start + 1_000)
    assert root["duration_ns"] == 3_000_000
    assert root["attributes"] == {"http.route": "/", "big": 9007199254740993, "tags": ["x", True]}
    assert root["events"] == [{"time_ns": str(start + 1), "name": "hello"}]
    assert child["links"][0]["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert child["links"][0]["span_id"] == "b7ad6b7169203331"
    assert root["scope"] == {"name": "collector", "version": "0.100.0"}
    assert trace["resources"][root["resource_id"]]["attributes"] == {"service.name": "json-shop", "host.cpus": 8}


def test_otlp_json_errors_over_http_answer_json_status(live_server: Any, ingest_token: str) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ingest_token}"}
    status, response_headers, content = post(f"{live_server.url}/v1/traces", b'{"resourceSpans": [', headers)
    assert status == 400
    assert response_headers["Content-Type"] == "application/json"
    assert json.loads(content)["message"]
    status, _, content = post(f"{live_server.url}/v1/traces", b"{}", {"Content-Type": "application/json"})
    assert status == 401
    assert "ingest token" in json.loads(content)["message"]
