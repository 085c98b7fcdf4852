"""Downloading a stored trace as OTLP JSON or Jaeger JSON, and reading the file back with the ingest converters."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from rest_framework.test import APIClient

from tests.conftest import now_ns, otlp_request, post_otlp
from traces.export import trace_to_jaeger, trace_to_otlp
from traces.ingest.convert import document_to_otlp
from traces.ingest.rows import key_values

LINKED_TRACE = "5b8efff798038103d269b633813fc60c"


def _add_attribute(attributes: Any, key: str, value: Any) -> None:
    kv = attributes.add()
    kv.key = key
    if isinstance(value, list):
        for item in value:
            kv.value.array_value.values.add().string_value = item
    elif isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = value


def rich_request(trace_id: str, *, start: int, jaeger_safe: bool = False) -> ExportTraceServiceRequest:
    """A server root, a client child with an event and a link, and an error grandchild; times in whole µs.

    `jaeger_safe` leaves out what Jaeger JSON cannot carry: trace state, and arrays (Jaeger tags are scalars).
    """
    start -= start % 1000
    request = otlp_request(
        [
            {
                "trace_id": trace_id,
                "span_id": "a1" * 8,
                "name": "GET /cart",
                "kind": Span.SPAN_KIND_SERVER,
                "start": start,
                "end": start + 50_000_000,
                "attributes": {"http.route": "/cart", "http.response.status_code": 200, "cache.hit_ratio": 0.25},
            },
            {
                "trace_id": trace_id,
                "span_id": "a2" * 8,
                "parent_span_id": "a1" * 8,
                "name": "SELECT cart_items",
                "kind": Span.SPAN_KIND_CLIENT,
                "start": start + 2_000_000,
                "end": start + 12_000_000,
                "attributes": {"db.system": "postgresql", "db.rows": 3, "db.cached": False},
            },
            {
                "trace_id": trace_id,
                "span_id": "a3" * 8,
                "parent_span_id": "a2" * 8,
                "name": "parse rows",
                "kind": Span.SPAN_KIND_INTERNAL,
                "start": start + 3_000_000,
                "end": start + 4_000_000,
                "error": True,
                "message": "row 2 is malformed",
            },
        ],
        service="cart",
        resource={"host.name": "cart-1", "deployment.environment": "prod"},
    )
    scope = request.resource_spans[0].scope_spans[0]
    scope.scope.version = "1.2.3"
    root, child, _grandchild = scope.spans
    root.status.code = 1  # OK
    root.flags = 1
    if not jaeger_safe:
        _add_attribute(root.attributes, "http.request.header.accept", ["application/json", "text/html"])
        root.trace_state = "vendor=abc"
    event = child.events.add()
    event.name = "rows fetched"
    event.time_unix_nano = start + 11_000_000
    _add_attribute(event.attributes, "rows", 3)
    link = child.links.add()
    link.trace_id = bytes.fromhex(LINKED_TRACE)
    link.span_id = bytes.fromhex("b7ad6b7169203331")
    _add_attribute(link.attributes, "link.reason", "batch")
    return request


def spans_of(request: ExportTraceServiceRequest, *, link_attributes: bool = True) -> dict[str, dict[str, Any]]:
    """Every span of a request by hex span ID, with its resource and scope, in comparable form."""
    out = {}
    for rs in request.resource_spans:
        resource = key_values(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                out[span.span_id.hex()] = {
                    "trace_id": span.trace_id.hex(),
                    "parent": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": span.kind,
                    "start": span.start_time_unix_nano,
                    "end": span.end_time_unix_nano,
                    "attributes": key_values(span.attributes),
                    "status": (span.status.code, span.status.message),
                    "events": [(e.time_unix_nano, e.name, key_values(e.attributes)) for e in span.events],
                    "links": [
                        (
                            link.trace_id.hex(),
                            link.span_id.hex(),
                            key_values(link.attributes) if link_attributes else {},
                        )
                        for link in span.links
                    ],
                    "resource": resource,
                    "scope": (ss.scope.name, ss.scope.version),
                    "trace_state": span.trace_state,
                    "flags": span.flags & 0xFF,
                }
    return out


@pytest.fixture
def stored_trace(client: Any, ingest_token: str) -> tuple[str, ExportTraceServiceRequest]:
    trace_id = secrets.token_hex(16)
    request = rich_request(trace_id, start=now_ns() - 10**9)
    assert post_otlp(client, request, ingest_token).status_code == 200
    return trace_id, request


def test_otlp_download_is_an_attachment_with_hex_ids_and_string_int64(
    api: APIClient, stored_trace: tuple[str, ExportTraceServiceRequest]
) -> None:
    trace_id, _sent = stored_trace
    response = api.get(f"/api/v1/traces/{trace_id}/export", {"format": "otlp"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="trace-{trace_id}.otlp.json"'
    document = orjson.loads(response.content)
    [resource_spans] = document["resourceSpans"]
    resource = {kv["key"]: kv["value"] for kv in resource_spans["resource"]["attributes"]}
    assert resource["service.name"] == {"stringValue": "cart"}
    assert resource["host.name"] == {"stringValue": "cart-1"}
    [scope_spans] = resource_spans["scopeSpans"]
    assert scope_spans["scope"] == {"name": "tests", "version": "1.2.3"}
    spans = {span["spanId"]: span for span in scope_spans["spans"]}
    assert set(spans) == {"a1" * 8, "a2" * 8, "a3" * 8}
    child = spans["a2" * 8]
    assert child["traceId"] == trace_id and child["parentSpanId"] == "a1" * 8
    assert isinstance(child["startTimeUnixNano"], str) and int(child["endTimeUnixNano"]) > int(
        child["startTimeUnixNano"]
    )
    assert child["kind"] == 3
    attributes = {kv["key"]: kv["value"] for kv in child["attributes"]}
    assert attributes["db.rows"] == {"intValue": "3"}, "int64 is a string in OTLP/JSON"
    assert attributes["db.cached"] == {"boolValue": False}
    assert child["events"][0]["name"] == "rows fetched" and isinstance(child["events"][0]["timeUnixNano"], str)
    assert child["links"][0]["traceId"] == LINKED_TRACE
    assert spans["a3" * 8]["status"] == {"code": 2, "message": "row 2 is malformed"}
    assert "parentSpanId" not in spans["a1" * 8]


def test_otlp_download_reads_back_as_the_same_spans(
    api: APIClient, stored_trace: tuple[str, ExportTraceServiceRequest]
) -> None:
    trace_id, sent = stored_trace
    response = api.get(f"/api/v1/traces/{trace_id}/export", {"format": "otlp"})

    back = document_to_otlp(orjson.loads(response.content))

    assert spans_of(back) == spans_of(sent)


def test_jaeger_download_has_spans_with_references_and_processes(
    api: APIClient, stored_trace: tuple[str, ExportTraceServiceRequest]
) -> None:
    trace_id, _sent = stored_trace
    response = api.get(f"/api/v1/traces/{trace_id}/export", {"format": "jaeger"})

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="trace-{trace_id}.jaeger.json"'
    document = orjson.loads(response.content)
    trace = document["data"][0]
    assert trace["traceID"] == trace_id
    spans = {span["spanID"]: span for span in trace["spans"]}
    child = spans["a2" * 8]
    assert child["operationName"] == "SELECT cart_items"
    assert {"refType": "CHILD_OF", "traceID": trace_id, "spanID": "a1" * 8} in child["references"]
    assert {"refType": "FOLLOWS_FROM", "traceID": LINKED_TRACE, "spanID": "b7ad6b7169203331"} in child["references"]
    assert spans["a1" * 8]["references"] == []
    tags = {tag["key"]: tag for tag in child["tags"]}
    assert tags["span.kind"]["value"] == "client"
    assert tags["db.rows"] == {"key": "db.rows", "type": "int64", "value": 3}
    assert child["logs"][0]["fields"][0] == {"key": "event", "type": "string", "value": "rows fetched"}
    error_tags = {tag["key"]: tag["value"] for tag in spans["a3" * 8]["tags"]}
    assert error_tags["error"] is True and error_tags["otel.status_description"] == "row 2 is malformed"
    process = trace["processes"][child["processID"]]
    assert process["serviceName"] == "cart"
    assert {"key": "host.name", "type": "string", "value": "cart-1"} in process["tags"]
    assert child["startTime"] == spans["a1" * 8]["startTime"] + 2000, "microseconds"


def test_jaeger_download_reads_back_as_the_same_spans(client: Any, ingest_token: str, api: APIClient) -> None:
    trace_id = secrets.token_hex(16)
    # Jaeger references carry no attributes either.
    sent = rich_request(trace_id, start=now_ns() - 10**9, jaeger_safe=True)
    assert post_otlp(client, sent, ingest_token).status_code == 200
    response = api.get(f"/api/v1/traces/{trace_id}/export", {"format": "jaeger"})

    back = spans_of(document_to_otlp(orjson.loads(response.content)), link_attributes=False)

    expected = spans_of(sent, link_attributes=False)
    assert back == expected


def test_export_refuses_unknown_formats_bad_ids_and_missing_traces(
    api: APIClient, stored_trace: tuple[str, ExportTraceServiceRequest]
) -> None:
    trace_id, _sent = stored_trace
    response = api.get(f"/api/v1/traces/{trace_id}/export", {"format": "xml"})
    assert response.status_code == 400 and response.json() == {"error": "format must be otlp or jaeger"}
    assert api.get("/api/v1/traces/not-a-trace/export").status_code == 400
    assert api.get(f"/api/v1/traces/{secrets.token_hex(16)}/export").status_code == 404


def test_export_needs_a_reader(stored_trace: tuple[str, ExportTraceServiceRequest]) -> None:
    trace_id, _sent = stored_trace
    assert APIClient().get(f"/api/v1/traces/{trace_id}/export").status_code in (401, 403)


def test_exporters_keep_nested_values_and_missing_parents() -> None:
    document = {
        "trace_id": "ab" * 16,
        "resources": {"7": {"service_name": "svc", "attributes": {"service.name": "svc"}, "schema_url": ""}},
        "spans": [
            {
                "span_id": "01" * 8,
                "parent_span_id": "ff" * 8,
                "name": "orphan",
                "service_name": "svc",
                "kind": "UNSPECIFIED",
                "status_code": "UNSET",
                "status_message": "",
                "start_ns": "1700000000000001000",
                "duration_ns": 5000,
                "resource_id": "7",
                "scope": {"name": "", "version": ""},
                "trace_state": "",
                "flags": 0,
                "attributes": {"list": [1, "two"], "map": {"k": True}, "none": None},
                "events": [],
                "links": [],
            }
        ],
    }
    otlp_span = trace_to_otlp(document)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    attributes = {kv["key"]: kv["value"] for kv in otlp_span["attributes"]}
    assert attributes["list"] == {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "two"}]}}
    assert attributes["map"] == {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": True}}]}}
    assert otlp_span["parentSpanId"] == "ff" * 8, "an orphan keeps the parent it names"

    jaeger_span = trace_to_jaeger(document)["data"][0]["spans"][0]
    tags = {tag["key"]: tag for tag in jaeger_span["tags"]}
    assert tags["list"] == {"key": "list", "type": "string", "value": '[1,"two"]'}, "Jaeger has no arrays"
    assert "span.kind" not in tags and "otel.status_code" not in tags
    assert jaeger_span["startTime"] == 1700000000000001
