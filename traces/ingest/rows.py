"""Turn an `ExportTraceServiceRequest` into span rows ready for COPY, plus per-trace and per-operation aggregates.

This is the hot path of ingest (tens of thousands of spans per second per core): keep per-span work minimal, no
ORM, no per-span allocation that is not needed.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .redaction import Redactor

NS_PER_DAY = 86_400 * 1_000_000_000
ZERO_TRACE = bytes(16)
ZERO_SPAN = bytes(8)
MAX_REASONS = 5
MAX_INT32 = 0x7FFFFFFF

# Column order of the COPY into `spans` (see migration 0002).
SPAN_COLUMNS = (
    "project_id",
    "start_ns",
    "trace_id",
    "span_id",
    "parent_span_id",
    "duration_ns",
    "service_name",
    "name",
    "kind",
    "status_code",
    "status_message",
    "resource_id",
    "scope_name",
    "scope_version",
    "trace_state",
    "flags",
    "http_method",
    "http_route",
    "http_status_code",
    "db_system",
    "db_name",
    "peer_service",
    "messaging_system",
    "messaging_destination",
    "server_address",
    "attributes",
    "events",
    "links",
    "dropped_attributes_count",
    "dropped_events_count",
    "dropped_links_count",
)


def any_value(value: Any) -> Any:
    """Decode an OTLP AnyValue into a JSON-able Python value."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def key_values(items: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in items}


def span_id_int(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)


def span_id_hex(value: int) -> str:
    return (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big").hex()


@dataclass
class ResourceInfo:
    fingerprint: bytes
    service_name: str
    attributes: dict[str, Any]
    schema_url: str


@dataclass
class TraceAggregate:
    start_ns: int
    end_ns: int
    span_count: int = 0
    error_count: int = 0
    services: set[str] = field(default_factory=set)
    root_service: str = ""
    root_name: str = ""


@dataclass
class SpanBatch:
    """The rows of one request. `resource_slot` in each row is replaced by the stored resource id before COPY."""

    rows: list[list[Any]] = field(default_factory=list)
    resources: list[ResourceInfo] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < MAX_REASONS and reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        return f"{self.rejected} span(s) rejected: " + "; ".join(self.reasons)


def resource_fingerprint(attributes: dict[str, Any], schema_url: str) -> bytes:
    canonical = orjson.dumps([schema_url, attributes], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha1(canonical).digest()


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


_JSON_COLUMNS = (25, 26, 27)


def _row_sanitize(row: list[Any]) -> None:
    """Replace NUL characters, which PostgreSQL text and jsonb cannot hold, with U+FFFD (rare: checked first)."""
    for index, value in enumerate(row):
        if not isinstance(value, str):
            continue
        if index in _JSON_COLUMNS:
            if "\\u0000" in value:
                row[index] = orjson.dumps(_without_nul(orjson.loads(value))).decode()
        elif "\x00" in value:
            row[index] = value.replace("\x00", "\ufffd")


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _status_code_or_none(value: Any) -> int | None:
    try:
        code = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return code if 0 <= code < 1000 else None


def batch_build(
    request: ExportTraceServiceRequest,
    *,
    project_id: int,
    redactor: Redactor | None = None,
    now_ns: int | None = None,
    max_future_ns: int = 2 * NS_PER_DAY,
) -> SpanBatch:
    """Validate, redact and flatten every span of the request into COPY rows (column order: SPAN_COLUMNS)."""
    batch = SpanBatch()
    if now_ns is None:
        now_ns = time.time_ns()
    latest_start = now_ns + max_future_ns
    redact = redactor if redactor is not None and redactor.active else None
    dumps = orjson.dumps
    rows_append = batch.rows.append

    for resource_spans in request.resource_spans:
        resource_attrs = key_values(resource_spans.resource.attributes)
        if b"\\u0000" in dumps(resource_attrs):
            resource_attrs = _without_nul(resource_attrs)
        if redact:
            redact.attributes(resource_attrs)
        service = resource_attrs.get("service.name")
        service_name = service if isinstance(service, str) and service else "unknown_service"
        resource_slot = len(batch.resources)
        batch.resources.append(
            ResourceInfo(
                fingerprint=resource_fingerprint(resource_attrs, resource_spans.schema_url),
                service_name=service_name,
                attributes=resource_attrs,
                schema_url=resource_spans.schema_url,
            )
        )
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name = scope.name
            scope_version = scope.version
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                if len(trace_id) != 16 or trace_id == ZERO_TRACE:
                    batch.reject("invalid trace_id (must be 16 bytes, not all zero)")
                    continue
                if len(span_id) != 8 or span_id == ZERO_SPAN:
                    batch.reject("invalid span_id (must be 8 bytes, not all zero)")
                    continue
                parent = span.parent_span_id
                if parent and (len(parent) != 8 or parent == ZERO_SPAN):
                    if parent == ZERO_SPAN:
                        parent = b""  # Some SDKs send eight zero bytes for "no parent".
                    else:
                        batch.reject("invalid parent_span_id (must be empty or 8 bytes)")
                        continue
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                if end < start:
                    batch.reject("end_time_unix_nano is before start_time_unix_nano")
                    continue
                if start > latest_start:
                    batch.reject("start time is more than the allowed clock drift in the future")
                    continue
                if start > 0x7FFFFFFFFFFFFFFF or end > 0x7FFFFFFFFFFFFFFF:
                    batch.reject("timestamp out of range")
                    continue
                kind = span.kind
                status = span.status
                # Proto3 enums are open: any int32 can arrive. Only the values the spec defines are stored.
                if not 0 <= kind <= 5:
                    batch.reject("unknown span kind (must be 0-5)")
                    continue
                if not 0 <= status.code <= 2:
                    batch.reject("unknown status code (must be 0-2)")
                    continue

                attrs = {}
                for kv in span.attributes:
                    value = kv.value
                    # Most attribute values are strings: skip the generic decoder for them.
                    attrs[kv.key] = (
                        value.string_value if value.WhichOneof("value") == "string_value" else any_value(value)
                    )
                if redact and attrs:
                    redact.attributes(attrs)
                events = None
                if span.events:
                    event_list = []
                    for event in span.events:
                        event_attrs = key_values(event.attributes)
                        if redact and event_attrs:
                            redact.attributes(event_attrs)
                        item: dict[str, Any] = {"time_ns": str(event.time_unix_nano), "name": event.name}
                        if event_attrs:
                            item["attributes"] = event_attrs
                        if event.dropped_attributes_count:
                            item["dropped_attributes_count"] = event.dropped_attributes_count
                        event_list.append(item)
                    events = dumps(event_list).decode()
                links = None
                if span.links:
                    link_list = []
                    for link in span.links:
                        link_attrs = key_values(link.attributes)
                        if redact and link_attrs:
                            redact.attributes(link_attrs)
                        link_list.append(
                            {
                                "trace_id": link.trace_id.hex(),
                                "span_id": link.span_id.hex(),
                                "trace_state": link.trace_state,
                                "attributes": link_attrs,
                                "flags": link.flags,
                            }
                        )
                    links = dumps(link_list).decode()
                status_message = status.message
                if redact and status_message:
                    status_message = redact.text(status_message)
                get = attrs.get
                row = [
                    project_id,
                    start,
                    trace_id.hex(),
                    int.from_bytes(span_id, "big", signed=True),
                    int.from_bytes(parent, "big", signed=True) if parent else None,
                    end - start,
                    service_name,
                    span.name,
                    kind,
                    status.code,
                    status_message,
                    resource_slot,
                    scope_name,
                    scope_version,
                    span.trace_state,
                    # fixed32 flags kept bit for bit in a signed int32 column.
                    span.flags - 0x1_0000_0000 if span.flags > MAX_INT32 else span.flags,
                    _str_or_none(get("http.request.method") or get("http.method")),
                    _str_or_none(get("http.route")),
                    _status_code_or_none(get("http.response.status_code") or get("http.status_code")),
                    _str_or_none(get("db.system.name") or get("db.system")),
                    _str_or_none(get("db.namespace") or get("db.name")),
                    _str_or_none(get("peer.service")),
                    _str_or_none(get("messaging.system")),
                    _str_or_none(get("messaging.destination.name") or get("messaging.destination")),
                    _str_or_none(get("server.address") or get("net.peer.name")),
                    dumps(attrs).decode(),
                    events,
                    links,
                    min(span.dropped_attributes_count, MAX_INT32),
                    min(span.dropped_events_count, MAX_INT32),
                    min(span.dropped_links_count, MAX_INT32),
                ]
                # One substring test per text value; only a row that has a NUL pays for the rewrite.
                if (
                    "\x00" in row[7]
                    or "\x00" in row[6]
                    or "\x00" in status_message
                    or "\x00" in row[14]
                    or "\x00" in scope_name
                    or "\x00" in scope_version
                    or "\\u0000" in row[25]
                    or (events is not None and "\\u0000" in events)
                    or (links is not None and "\\u0000" in links)
                ):
                    _row_sanitize(row)
                rows_append(row)
    return batch


# Indexes into a row, for the aggregates computed from it.
COL_START, COL_TRACE, COL_PARENT, COL_DURATION, COL_SERVICE, COL_NAME, COL_KIND, COL_STATUS, COL_RESOURCE = (
    1,
    2,
    4,
    5,
    6,
    7,
    8,
    9,
    11,
)


def traces_aggregate(rows: list[list[Any]]) -> dict[str, TraceAggregate]:
    """Per-trace time window, counts, services and root, from the rows that were actually stored."""
    out: dict[str, TraceAggregate] = {}
    for row in rows:
        trace = row[COL_TRACE]
        start = row[COL_START]
        end = start + row[COL_DURATION]
        agg = out.get(trace)
        if agg is None:
            agg = out[trace] = TraceAggregate(start_ns=start, end_ns=end)
        else:
            if start < agg.start_ns:
                agg.start_ns = start
            if end > agg.end_ns:
                agg.end_ns = end
        agg.span_count += 1
        if row[COL_STATUS] == 2:
            agg.error_count += 1
        agg.services.add(row[COL_SERVICE])
        if row[COL_PARENT] is None:
            agg.root_service = row[COL_SERVICE]
            agg.root_name = row[COL_NAME]
    return out
