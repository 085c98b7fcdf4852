"""Trace files uploaded from the browser: viewed without being stored, or stored into a project.

A file (OTLP/JSON, Jaeger JSON or Zipkin v2 JSON, optionally gzipped) is converted with the ingest converters, then
flattened by the same code ingest uses (`batch_build`), so a viewed file looks exactly as it would once stored: the
document and analysis answered here have the shapes of GET /api/v1/traces/<id> and /analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from django.contrib.auth.models import AnonymousUser, User
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from . import analysis, selectors, trace_selectors
from .ingest import otlp
from .ingest.convert import document_to_otlp, traces_by_id
from .ingest.errors import IngestError
from .ingest.rows import (
    COL_DURATION,
    COL_KIND,
    COL_NAME,
    COL_PARENT,
    COL_RESOURCE,
    COL_SERVICE,
    COL_START,
    COL_STATUS,
    COL_TRACE,
    SpanBatch,
    batch_build,
    span_id_hex,
    traces_aggregate,
)
from .models import Project
from .services import IngestOutcome, spans_ingest

UPLOAD_MAX_BYTES = 64 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
# Viewing a file must not depend on when it was recorded: no span is refused for being "in the future".
_NO_DRIFT_LIMIT = 2**62
# Columns of a batch row not named in rows.py.
_COL_SPAN_ID, _COL_STATUS_MESSAGE = 3, 10
_COL_SCOPE_NAME, _COL_SCOPE_VERSION, _COL_TRACE_STATE, _COL_FLAGS = 12, 13, 14, 15
_COL_ATTRIBUTES, _COL_EVENTS, _COL_LINKS = 25, 26, 27
_COL_DROPPED = (28, 29, 30)
# Same precedence as the stored-trace analysis (trace_selectors._SPANS_SQL): spans of one host share a clock.
_HOST_KEYS = ("host.id", "host.ip", "host.name", "service.instance.id")


def upload_decode(body: bytes) -> ExportTraceServiceRequest:
    """Parse an uploaded trace file. Raise IngestError with a message a person can act on."""
    if len(body) > UPLOAD_MAX_BYTES:
        raise IngestError(f"the file is larger than the {UPLOAD_MAX_BYTES // (1024 * 1024)} MiB limit", status=413)
    if body[:2] == GZIP_MAGIC:
        body = otlp.body_decompress(body, encoding="gzip", limit=UPLOAD_MAX_BYTES)
    if not body.strip():
        raise IngestError("the file is empty")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise IngestError(f"the file is not JSON ({exc}); upload OTLP/JSON, Jaeger JSON or Zipkin JSON") from exc
    request = document_to_otlp(document)
    if not any(scope.spans for resource in request.resource_spans for scope in resource.scope_spans):
        raise IngestError("the file holds no spans")
    return request


def upload_batch(request: ExportTraceServiceRequest) -> SpanBatch:
    """Validate and flatten every span of the file, without redaction: the file is the user's own."""
    batch = batch_build(request, project_id=0, redactor=None, max_future_ns=_NO_DRIFT_LIMIT)
    if not batch.rows:
        raise IngestError(f"the file holds no valid span: {batch.message}")
    return batch


def upload_traces(batch: SpanBatch) -> list[dict[str, Any]]:
    """One summary per trace in the file, in the order they first appear."""
    out = []
    for trace_id, agg in traces_aggregate(batch.rows).items():
        out.append(
            {
                "trace_id": trace_id,
                "root_service": agg.root_service,
                "root_name": agg.root_name,
                "start_ns": str(agg.start_ns),
                "duration_ns": agg.end_ns - agg.start_ns,
                "span_count": agg.span_count,
                "error_count": agg.error_count,
                "services": sorted(agg.services),
            }
        )
    return out


def _kind_name(code: int) -> str:
    return selectors.SPAN_KINDS[code] if 0 <= code < len(selectors.SPAN_KINDS) else "UNSPECIFIED"


def _status_name(code: int) -> str:
    return selectors.STATUS_CODES[code] if 0 <= code < len(selectors.STATUS_CODES) else "UNSET"


def _span_dict(row: list[Any]) -> dict[str, Any]:
    parent = row[COL_PARENT]
    return {
        "span_id": span_id_hex(row[_COL_SPAN_ID]),
        "parent_span_id": None if parent is None else span_id_hex(parent),
        "name": row[COL_NAME],
        "service_name": row[COL_SERVICE],
        "kind": _kind_name(row[COL_KIND]),
        "status_code": _status_name(row[COL_STATUS]),
        "status_message": row[_COL_STATUS_MESSAGE],
        "start_ns": str(row[COL_START]),
        "duration_ns": row[COL_DURATION],
        "resource_id": str(row[COL_RESOURCE]),
        "scope": {"name": row[_COL_SCOPE_NAME], "version": row[_COL_SCOPE_VERSION]},
        "trace_state": row[_COL_TRACE_STATE],
        "flags": row[_COL_FLAGS],
        "attributes": orjson.loads(row[_COL_ATTRIBUTES]),
        "events": orjson.loads(row[_COL_EVENTS]) if row[_COL_EVENTS] else [],
        "links": orjson.loads(row[_COL_LINKS]) if row[_COL_LINKS] else [],
        "dropped_attributes_count": row[_COL_DROPPED[0]],
        "dropped_events_count": row[_COL_DROPPED[1]],
        "dropped_links_count": row[_COL_DROPPED[2]],
    }


@dataclass
class UploadedTrace:
    document: dict[str, Any]
    spans: list[analysis.SpanLite]


def upload_trace(batch: SpanBatch, *, trace_id: str | None) -> UploadedTrace:
    """The trace document of one trace of the file (the first when `trace_id` is not given), and its analysis input.

    Raise IngestError (404) when the file holds no such trace.
    """
    summaries = {summary["trace_id"]: summary for summary in upload_traces(batch)}
    if trace_id:
        try:
            wanted = selectors.trace_id_parse(trace_id).hex
        except ValueError as exc:
            raise IngestError(f"trace_id: {exc}") from exc
        if wanted not in summaries:
            raise IngestError(f"the file holds no trace {wanted}", status=404)
    else:
        wanted = next(iter(summaries))
    rows = [row for row in batch.rows if row[COL_TRACE] == wanted]
    # The stored document is ordered by (start, span id as a signed bigint); keep the same order.
    rows.sort(key=lambda row: (row[COL_START], row[_COL_SPAN_ID]))
    used = sorted({row[COL_RESOURCE] for row in rows})
    resources = {
        str(slot): {
            "service_name": batch.resources[slot].service_name,
            "attributes": batch.resources[slot].attributes,
            "schema_url": batch.resources[slot].schema_url,
        }
        for slot in used
    }
    hosts = {slot: _host_key(batch.resources[slot].attributes) for slot in used}
    summary = summaries[wanted]
    document = {
        "trace_id": wanted,
        "projects": [],
        "start_ns": summary["start_ns"],
        "end_ns": str(int(summary["start_ns"]) + summary["duration_ns"]),
        "duration_ns": summary["duration_ns"],
        "root_service": summary["root_service"],
        "root_name": summary["root_name"],
        "span_count": summary["span_count"],
        "error_count": summary["error_count"],
        "services": summary["services"],
        "resources": resources,
        "spans": [_span_dict(row) for row in rows],
    }
    spans = [
        analysis.SpanLite(
            row[_COL_SPAN_ID],
            row[COL_PARENT],
            row[COL_START],
            row[COL_DURATION],
            row[COL_KIND],
            row[COL_SERVICE],
            row[COL_NAME],
            row[COL_STATUS],
            hosts[row[COL_RESOURCE]],
        )
        for row in rows
    ]
    return UploadedTrace(document=document, spans=spans)


def _host_key(attributes: dict[str, Any]) -> str:
    for key in _HOST_KEYS:
        value = attributes.get(key)
        if value is not None:
            return value if isinstance(value, str) else orjson.dumps(value).decode()
    return ""


def upload_view(body: bytes, *, trace_id: str | None = None, adjust: bool = True) -> dict[str, Any]:
    """What the upload page shows: the file's traces, and the document and analysis of the chosen one."""
    batch = upload_batch(upload_decode(body))
    chosen = upload_trace(batch, trace_id=trace_id)
    return {
        "traces": upload_traces(batch),
        "trace_id": chosen.document["trace_id"],
        "rejected": batch.rejected,
        "message": batch.message,
        "document": chosen.document,
        "analysis": trace_selectors.trace_analysis_document(chosen.spans, adjust=adjust),
    }


def upload_projects(*, user: User | AnonymousUser) -> list[Project]:
    """Projects the user may store an uploaded file into (those they can see)."""
    return list(Project.objects.filter(id__in=selectors.project_ids_visible(user=user)).order_by("name"))


@dataclass(frozen=True)
class StoredUpload:
    project: str
    trace_ids: list[str]
    outcome: IngestOutcome


def upload_store(*, user: User | AnonymousUser, project: str, body: bytes) -> StoredUpload:
    """Store every span of the file into `project` (redacted like any ingest). Raise IngestError (400, 403)."""
    target = next((p for p in upload_projects(user=user) if p.name == project), None)
    if target is None:
        raise IngestError(f"you are not a member of a project named {project!r}", status=403)
    request = upload_decode(body)
    outcome = spans_ingest(project_id=target.pk, request=request)
    if not outcome.accepted:
        raise IngestError(f"no span of the file could be stored: {outcome.message}")
    trace_ids = [raw.hex() for raw in traces_by_id(request) if len(raw) == 16 and any(raw)]
    return StoredUpload(project=target.name, trace_ids=trace_ids, outcome=outcome)
