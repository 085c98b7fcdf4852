"""Zipkin v2 JSON and Jaeger JSON (the format Jaeger UI downloads) converted into OTLP requests.

Mapping follows the OpenTelemetry non-OTLP mapping specs: microseconds become nanoseconds, Zipkin's `error` tag and
Jaeger's `error=true` / `otel.status_code` become span status, `span.kind` becomes the span kind, annotations and
logs become events, remote endpoints become `peer.service` / `server.address`.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from .errors import IngestError

KIND_BY_NAME = {
    "internal": Span.SPAN_KIND_INTERNAL,
    "server": Span.SPAN_KIND_SERVER,
    "client": Span.SPAN_KIND_CLIENT,
    "producer": Span.SPAN_KIND_PRODUCER,
    "consumer": Span.SPAN_KIND_CONSUMER,
}


def _id_bytes(value: Any, size: int) -> bytes:
    """Hex ID to bytes, left-padded to `size` (64-bit Zipkin/Jaeger trace IDs); invalid hex yields b""."""
    if not isinstance(value, str) or not value or len(value) > size * 2:
        return b""
    try:
        return bytes.fromhex(value.rjust(size * 2, "0"))
    except ValueError:
        return b""


# Deeper values are refused: they cannot be stored as JSON (orjson stops at 255 levels) and no SDK sends them.
MAX_VALUE_DEPTH = 32


def _list(value: Any, what: str) -> list[Any]:
    """A JSON array field (missing or null is empty); anything else is the client's error, not ours."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise IngestError(f"{what} must be an array")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise IngestError(f"{what} must be an object")
    return value


def _set_value(target: AnyValue, value: Any, depth: int = 0) -> None:
    if depth > MAX_VALUE_DEPTH:
        raise IngestError(f"attribute values may be nested at most {MAX_VALUE_DEPTH} levels deep")
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int) and -(2**63) <= value < 2**63:
        target.int_value = value
    elif isinstance(value, float) and math.isfinite(value):
        target.double_value = value
    elif isinstance(value, (list, tuple)):
        for item in value:
            _set_value(target.array_value.values.add(), item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            kv = target.kvlist_value.values.add()
            kv.key = str(key)
            _set_value(kv.value, item, depth + 1)
    elif value is None:
        target.string_value = ""
    else:
        target.string_value = str(value)


def _add_attribute(attributes: Any, key: str, value: Any) -> None:
    kv: KeyValue = attributes.add()
    kv.key = key
    _set_value(kv.value, value)


def _micros(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise IngestError(f"{field} must be a number of microseconds")
    try:
        micros = int(value)
    except ValueError as exc:
        raise IngestError(f"{field} must be a number of microseconds") from exc
    if micros < 0 or micros > 2**63 // 1000:
        raise IngestError(f"{field} is out of range")
    return micros


class _Builder:
    """Groups spans into ResourceSpans by resource so each resource is stored once."""

    def __init__(self) -> None:
        self.request = ExportTraceServiceRequest()
        self._scopes: dict[tuple[Any, ...], Any] = {}

    def scope_spans(self, service: str, resource_attrs: Iterable[tuple[str, Any]], scope: tuple[str, str]) -> Any:
        resource_key = (service, tuple(sorted((k, repr(v)) for k, v in resource_attrs)))
        key = (resource_key, scope)
        found = self._scopes.get(key)
        if found is None:
            resource_spans = self.request.resource_spans.add()
            _add_attribute(resource_spans.resource.attributes, "service.name", service)
            for attr_key, attr_value in resource_attrs:
                if attr_key != "service.name":
                    _add_attribute(resource_spans.resource.attributes, attr_key, attr_value)
            found = resource_spans.scope_spans.add()
            found.scope.name, found.scope.version = scope
            self._scopes[key] = found
        return found


def _shared_server_span_id(trace_id: bytes, span_id: bytes) -> bytes:
    return hashlib.sha256(trace_id + span_id + b"shared").digest()[:8]


def _zipkin_local_service(item: dict[str, Any]) -> str:
    local = item.get("localEndpoint") or {}
    return str(local.get("serviceName") or "unknown_service") if isinstance(local, dict) else ""


def _zipkin_shared_servers(document: list[Any]) -> dict[tuple[bytes, bytes], str]:
    """(trace ID, span ID) -> service of every server half that shares its span ID with the client (B3 join)."""
    found: dict[tuple[bytes, bytes], str] = {}
    for item in document:
        if isinstance(item, dict) and item.get("shared") and str(item.get("kind") or "").lower() == "server":
            span_id = _id_bytes(item.get("id"), 8)
            if span_id:
                found[(_id_bytes(item.get("traceId"), 16), span_id)] = _zipkin_local_service(item)
    return found


def zipkin_to_otlp(document: Any) -> ExportTraceServiceRequest:
    """Convert a Zipkin v2 ListOfSpans.

    Shared server halves (B3 "join", Brave's default) get a derived span ID as Jaeger's deduper does, child of the
    client half; the server's own children, which name the shared ID as parent, are moved under the server half.
    That takes the server half in the same batch: a child sent without it stays under the client half.
    """
    if not isinstance(document, list):
        raise IngestError("Zipkin v2 body must be a JSON array of spans")
    builder = _Builder()
    shared_servers = _zipkin_shared_servers(document)
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise IngestError(f"span {index} is not an object")
        local = item.get("localEndpoint") or {}
        remote = item.get("remoteEndpoint") or {}
        if not isinstance(local, dict) or not isinstance(remote, dict):
            raise IngestError(f"span {index}: endpoints must be objects")
        service = str(local.get("serviceName") or "unknown_service")
        resource: list[tuple[str, Any]] = []
        for key, attr in (("ipv4", "host.ip"), ("ipv6", "host.ip")):
            if local.get(key):
                resource.append((attr, str(local[key])))
        tags = item.get("tags") or {}
        if not isinstance(tags, dict):
            raise IngestError(f"span {index}: tags must be an object")
        scope = (
            str(tags.get("otel.scope.name") or tags.get("otel.library.name") or ""),
            str(tags.get("otel.scope.version") or tags.get("otel.library.version") or ""),
        )
        span = builder.scope_spans(service, resource, scope).spans.add()
        span.trace_id = _id_bytes(item.get("traceId"), 16)
        span_id = _id_bytes(item.get("id"), 8)
        parent_id = _id_bytes(item.get("parentId"), 8) if item.get("parentId") else b""
        kind_name = str(item.get("kind") or "").lower()
        span.kind = KIND_BY_NAME.get(kind_name, Span.SPAN_KIND_INTERNAL)
        if item.get("shared") and span.kind == Span.SPAN_KIND_SERVER and span_id:
            # The server half reuses the client's span ID; give it its own, child of the client half.
            parent_id = span_id
            span_id = _shared_server_span_id(span.trace_id, span_id)
        elif parent_id and shared_servers.get((span.trace_id, parent_id)) == service:
            # A child of the shared ID on the server's side belongs under the server half.
            parent_id = _shared_server_span_id(span.trace_id, parent_id)
        span.span_id = span_id
        span.parent_span_id = parent_id
        span.name = str(item.get("name") or "")
        start = _micros(item.get("timestamp"), "timestamp") * 1000
        span.start_time_unix_nano = start
        span.end_time_unix_nano = start + _micros(item.get("duration"), "duration") * 1000
        status_code = Status.STATUS_CODE_UNSET
        for key, value in tags.items():
            if key in ("otel.scope.name", "otel.scope.version", "otel.library.name", "otel.library.version"):
                continue
            if key == "otel.status_code":
                status_code = Status.STATUS_CODE_ERROR if str(value).upper() == "ERROR" else Status.STATUS_CODE_OK
                continue
            if key == "error":
                status_code = Status.STATUS_CODE_ERROR
                span.status.message = str(value) if value not in ("", "true") else ""
                continue
            _add_attribute(span.attributes, str(key), value)
        span.status.code = status_code
        if remote.get("serviceName"):
            _add_attribute(span.attributes, "peer.service", str(remote["serviceName"]))
        if remote.get("ipv4") or remote.get("ipv6"):
            _add_attribute(span.attributes, "network.peer.address", str(remote.get("ipv4") or remote.get("ipv6")))
        if remote.get("port"):
            _add_attribute(span.attributes, "network.peer.port", remote["port"])
        for annotation in _list(item.get("annotations"), f"span {index}: annotations"):
            if not isinstance(annotation, dict):
                raise IngestError(f"span {index}: annotations must be objects")
            event = span.events.add()
            event.time_unix_nano = _micros(annotation.get("timestamp"), "annotation timestamp") * 1000
            event.name = str(annotation.get("value") or "")
    return builder.request


def _jaeger_tag_value(tag: dict[str, Any]) -> Any:
    value = tag.get("value")
    kind = str(tag.get("type") or "string").lower()
    try:
        if kind in ("int64", "int"):
            return int(value)  # type: ignore[arg-type]
        if kind in ("float64", "float"):
            return float(value)  # type: ignore[arg-type]
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).lower() == "true"
    except (TypeError, ValueError):
        return str(value)
    return value if isinstance(value, str) else ("" if value is None else str(value))


def jaeger_traces(document: Any) -> list[dict[str, Any]]:
    """The traces of a Jaeger JSON document: `{"data": [trace, ...]}`, a bare trace, or a list of traces."""
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        traces = document["data"]
    elif isinstance(document, dict) and "spans" in document:
        traces = [document]
    elif isinstance(document, list):
        traces = document
    else:
        raise IngestError('Jaeger JSON must be {"data": [traces]} (as Jaeger UI downloads it) or a trace object')
    if not all(isinstance(trace, dict) and isinstance(trace.get("spans"), list) for trace in traces):
        raise IngestError("every Jaeger trace must be an object with a spans array")
    return traces


def jaeger_to_otlp(document: Any) -> ExportTraceServiceRequest:
    builder = _Builder()
    for trace in jaeger_traces(document):
        processes = trace.get("processes") or {}
        if not isinstance(processes, dict):
            raise IngestError("processes must be an object")
        for index, item in enumerate(trace["spans"]):
            if not isinstance(item, dict):
                raise IngestError(f"span {index} is not an object")
            process_id = item.get("processID")
            process = item.get("process") or (processes.get(process_id) if isinstance(process_id, str) else None)
            process = _object(process, f"span {index}: process")
            service = str(process.get("serviceName") or "unknown_service")
            process_tags = [
                (str(t.get("key")), _jaeger_tag_value(t))
                for t in _list(process.get("tags"), f"span {index}: process tags")
                if isinstance(t, dict)
            ]
            tags = [t for t in _list(item.get("tags"), f"span {index}: tags") if isinstance(t, dict)]
            tag_map = {str(t.get("key")): _jaeger_tag_value(t) for t in tags}
            scope = (
                str(tag_map.get("otel.scope.name") or tag_map.get("otel.library.name") or ""),
                str(tag_map.get("otel.scope.version") or tag_map.get("otel.library.version") or ""),
            )
            span = builder.scope_spans(service, process_tags, scope).spans.add()
            trace_hex = item.get("traceID") or trace.get("traceID")
            span.trace_id = _id_bytes(trace_hex, 16)
            span.span_id = _id_bytes(item.get("spanID"), 8)
            span.name = str(item.get("operationName") or "")
            flags = item.get("flags") or 0
            if isinstance(flags, bool) or not isinstance(flags, int):
                raise IngestError(f"span {index}: flags must be an integer")
            span.flags = flags & 0xFF
            start = _micros(item.get("startTime"), "startTime") * 1000
            span.start_time_unix_nano = start
            span.end_time_unix_nano = start + _micros(item.get("duration"), "duration") * 1000
            references = [r for r in _list(item.get("references"), f"span {index}: references") if isinstance(r, dict)]
            parent = next(
                (
                    r
                    for r in references
                    if r.get("refType") == "CHILD_OF" and _id_bytes(r.get("traceID"), 16) == span.trace_id
                ),
                None,
            )
            if parent is None:
                parent = next(
                    (
                        r
                        for r in references
                        if r.get("refType") == "FOLLOWS_FROM" and _id_bytes(r.get("traceID"), 16) == span.trace_id
                    ),
                    None,
                )
            if parent is not None:
                span.parent_span_id = _id_bytes(parent.get("spanID"), 8)
            for ref in references:
                if ref is parent:
                    continue
                link = span.links.add()
                link.trace_id = _id_bytes(ref.get("traceID"), 16)
                link.span_id = _id_bytes(ref.get("spanID"), 8)
                _add_attribute(link.attributes, "opentracing.ref_type", str(ref.get("refType", "")).lower())
            status_code = Status.STATUS_CODE_UNSET
            for key, value in tag_map.items():
                if key in ("otel.scope.name", "otel.scope.version", "otel.library.name", "otel.library.version"):
                    continue
                if key == "span.kind":
                    span.kind = KIND_BY_NAME.get(str(value).lower(), Span.SPAN_KIND_INTERNAL)
                elif key == "error":
                    if value is True or str(value).lower() == "true":
                        status_code = Status.STATUS_CODE_ERROR
                elif key == "otel.status_code":
                    status_code = Status.STATUS_CODE_ERROR if str(value).upper() == "ERROR" else Status.STATUS_CODE_OK
                elif key in ("otel.status_description", "otel.status_message"):
                    span.status.message = str(value)
                else:
                    _add_attribute(span.attributes, key, value)
            if span.kind == Span.SPAN_KIND_UNSPECIFIED:
                span.kind = Span.SPAN_KIND_INTERNAL
            span.status.code = status_code
            for log in _list(item.get("logs"), f"span {index}: logs"):
                if not isinstance(log, dict):
                    continue
                event = span.events.add()
                event.time_unix_nano = _micros(log.get("timestamp"), "log timestamp") * 1000
                fields = [f for f in _list(log.get("fields"), f"span {index}: log fields") if isinstance(f, dict)]
                name = next((_jaeger_tag_value(f) for f in fields if f.get("key") == "event"), "log")
                event.name = str(name)
                for field in fields:
                    if field.get("key") != "event":
                        _add_attribute(event.attributes, str(field.get("key")), _jaeger_tag_value(field))
    return builder.request


def document_to_otlp(document: Any) -> ExportTraceServiceRequest:
    """Detect the format of a trace file (OTLP JSON, Jaeger JSON or Zipkin v2 JSON) and convert it."""
    from .otlp import request_from_otlp_json

    if isinstance(document, dict) and ("resourceSpans" in document or "resource_spans" in document):
        return request_from_otlp_json(document)
    if isinstance(document, list) and document and isinstance(document[0], dict) and "traceId" in document[0]:
        return zipkin_to_otlp(document)
    return jaeger_to_otlp(document)


def spans_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def traces_by_id(request: ExportTraceServiceRequest) -> dict[bytes, int]:
    counts: dict[bytes, int] = defaultdict(int)
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                counts[span.trace_id] += 1
    return counts
