"""Stored traces written back out as files: OTLP/JSON and Jaeger JSON (the format Jaeger UI downloads).

Plain functions from the trace document (the shape of GET /api/v1/traces/<id>, see selectors.trace_document) to a
JSON-able dict. Both outputs are read back by traces.ingest.convert.document_to_otlp, so a downloaded trace can be
uploaded or imported again.

What Jaeger JSON cannot carry is dropped or folded into tags, as the OpenTelemetry Jaeger translator does: span kind,
status, instrumentation scope and trace state become tags; links become FOLLOWS_FROM references (their attributes
are lost); times are microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import orjson

KIND_NUMBER = {"UNSPECIFIED": 0, "INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
STATUS_NUMBER = {"UNSET": 0, "OK": 1, "ERROR": 2}


# --------------------------------------------------------------------------------------------------- OTLP/JSON


def _any_value(value: Any) -> dict[str, Any]:
    """A stored attribute value as an OTLP/JSON AnyValue. int64 travels as a string, as the spec requires."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        # JSON has no NaN or infinity; the protobuf JSON mapping spells them as strings.
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(item) for item in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": _key_values(value)}}
    return {}  # null: an empty AnyValue


def _key_values(attributes: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [{"key": key, "value": _any_value(value)} for key, value in (attributes or {}).items()]


def _otlp_span(span: dict[str, Any], trace_id: str) -> dict[str, Any]:
    start = int(span["start_ns"])
    out: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": span["span_id"],
        "traceState": span.get("trace_state") or "",
        "name": span.get("name") or "",
        "kind": KIND_NUMBER.get(span.get("kind") or "", 0),
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + int(span.get("duration_ns") or 0)),
        "attributes": _key_values(span.get("attributes")),
        "droppedAttributesCount": span.get("dropped_attributes_count") or 0,
        "events": [
            {
                "timeUnixNano": str(event.get("time_ns") or "0"),
                "name": event.get("name") or "",
                "attributes": _key_values(event.get("attributes")),
                "droppedAttributesCount": event.get("dropped_attributes_count") or 0,
            }
            for event in span.get("events") or []
        ],
        "droppedEventsCount": span.get("dropped_events_count") or 0,
        "links": [
            {
                "traceId": link.get("trace_id") or "",
                "spanId": link.get("span_id") or "",
                "traceState": link.get("trace_state") or "",
                "attributes": _key_values(link.get("attributes")),
                "flags": link.get("flags") or 0,
            }
            for link in span.get("links") or []
        ],
        "droppedLinksCount": span.get("dropped_links_count") or 0,
        "status": {
            "code": STATUS_NUMBER.get(span.get("status_code") or "", 0),
            "message": span.get("status_message") or "",
        },
        "flags": span.get("flags") or 0,
    }
    if span.get("parent_span_id"):
        out["parentSpanId"] = span["parent_span_id"]
    return out


def trace_to_otlp(document: dict[str, Any]) -> dict[str, Any]:
    """An ExportTraceServiceRequest in OTLP/JSON: hex IDs, int64 as strings, enums as numbers.

    Spans are grouped by their resource and then by instrumentation scope, as an SDK or Collector sends them.
    """
    trace_id = document["trace_id"]
    resources = document.get("resources") or {}
    groups: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for span in document.get("spans") or []:
        scope = span.get("scope") or {}
        key = (scope.get("name") or "", scope.get("version") or "")
        groups.setdefault(str(span.get("resource_id")), {}).setdefault(key, []).append(_otlp_span(span, trace_id))
    resource_spans = []
    for resource_id, scopes in groups.items():
        resource = resources.get(resource_id) or {}
        attributes = dict(resource.get("attributes") or {})
        # A resource always names its service: the store keeps it as a column even when the attribute was absent.
        attributes.setdefault("service.name", resource.get("service_name") or "unknown_service")
        resource_spans.append(
            {
                "resource": {"attributes": _key_values(attributes)},
                "schemaUrl": resource.get("schema_url") or "",
                "scopeSpans": [
                    {"scope": {"name": name, "version": version}, "spans": spans}
                    for (name, version), spans in scopes.items()
                ],
            }
        )
    return {"resourceSpans": resource_spans}


# --------------------------------------------------------------------------------------------------- Jaeger JSON


def _tag(key: str, value: Any) -> dict[str, Any]:
    """A Jaeger tag. Jaeger has no arrays or maps: those are written as JSON text."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value if math.isfinite(value) else str(value)}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    if value is None:
        return {"key": key, "type": "string", "value": ""}
    return {"key": key, "type": "string", "value": orjson.dumps(value).decode()}


def _tags(attributes: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [_tag(key, value) for key, value in (attributes or {}).items()]


def _micros(ns: int | str) -> int:
    return int(ns) // 1000


def _jaeger_span(span: dict[str, Any], trace_id: str, process_id: str) -> dict[str, Any]:
    references = []
    if span.get("parent_span_id"):
        references.append({"refType": "CHILD_OF", "traceID": trace_id, "spanID": span["parent_span_id"]})
    for link in span.get("links") or []:
        references.append({"refType": "FOLLOWS_FROM", "traceID": link.get("trace_id"), "spanID": link.get("span_id")})
    tags = _tags(span.get("attributes"))
    kind = (span.get("kind") or "").lower()
    if kind and kind != "unspecified":
        tags.append(_tag("span.kind", kind))
    status = span.get("status_code") or "UNSET"
    if status != "UNSET":
        tags.append(_tag("otel.status_code", status))
    if status == "ERROR":
        # Jaeger UI marks a span as failed by this tag, not by otel.status_code.
        tags.append(_tag("error", True))
    if span.get("status_message"):
        tags.append(_tag("otel.status_description", span["status_message"]))
    scope = span.get("scope") or {}
    if scope.get("name"):
        tags.append(_tag("otel.scope.name", scope["name"]))
    if scope.get("version"):
        tags.append(_tag("otel.scope.version", scope["version"]))
    if span.get("trace_state"):
        tags.append(_tag("w3c.tracestate", span["trace_state"]))
    logs = [
        {
            "timestamp": _micros(event.get("time_ns") or 0),
            "fields": [_tag("event", event.get("name") or ""), *_tags(event.get("attributes"))],
        }
        for event in span.get("events") or []
    ]
    return {
        "traceID": trace_id,
        "spanID": span["span_id"],
        "flags": span.get("flags") or 0,
        "operationName": span.get("name") or "",
        "references": references,
        "startTime": _micros(span["start_ns"]),
        "duration": _micros(span.get("duration_ns") or 0),
        "tags": tags,
        "logs": logs,
        "processID": process_id,
        "warnings": None,
    }


def _process_ids(resource_ids: Iterable[str]) -> dict[str, str]:
    """Resource id -> Jaeger process id (p1, p2, ... in order of first use)."""
    out: dict[str, str] = {}
    for resource_id in resource_ids:
        if resource_id not in out:
            out[resource_id] = f"p{len(out) + 1}"
    return out


def trace_to_jaeger(document: dict[str, Any]) -> dict[str, Any]:
    """`{"data": [trace]}` as Jaeger's query API answers and Jaeger UI downloads: spans with references, a process
    table holding each resource's attributes as tags."""
    trace_id = document["trace_id"]
    spans = document.get("spans") or []
    resources = document.get("resources") or {}
    process_of = _process_ids(str(span.get("resource_id")) for span in spans)
    processes = {}
    for resource_id, process_id in process_of.items():
        resource = resources.get(resource_id) or {}
        attributes = {k: v for k, v in (resource.get("attributes") or {}).items() if k != "service.name"}
        processes[process_id] = {
            "serviceName": resource.get("service_name") or "unknown_service",
            "tags": _tags(attributes),
        }
    return {
        "data": [
            {
                "traceID": trace_id,
                "spans": [_jaeger_span(span, trace_id, process_of[str(span.get("resource_id"))]) for span in spans],
                "processes": processes,
                "warnings": None,
            }
        ],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


EXPORT_FORMATS = {"otlp": trace_to_otlp, "jaeger": trace_to_jaeger}


def trace_export(document: dict[str, Any], *, export_format: str) -> bytes:
    """The trace in `export_format` ("otlp" or "jaeger") as JSON bytes. Raise KeyError for another format."""
    return orjson.dumps(EXPORT_FORMATS[export_format](document))
