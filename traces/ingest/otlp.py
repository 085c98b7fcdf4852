"""Decode OTLP/HTTP bodies (protobuf or JSON) into `ExportTraceServiceRequest`."""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from .errors import IngestError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
GZIP_MAGIC = b"\x1f\x8b"
PROTOBUF_ALIASES = {"application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf"}


def content_type_parse(header: str) -> str | None:
    """Return PROTOBUF or JSON for a Content-Type header, or None when it is neither."""
    media = header.split(";", 1)[0].strip().lower()
    if media in PROTOBUF_ALIASES:
        return PROTOBUF
    if media == JSON:
        return JSON
    return None


def body_decompress(body: bytes, *, encoding: str, limit: int) -> bytes:
    """Undo Content-Encoding with a hard cap on the decompressed size (a gzip bomb stops at `limit`)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise IngestError(f"unsupported Content-Encoding {encoding!r}; use gzip or none", status=415)
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    parts: list[bytes] = []
    size = 0
    data = body
    while True:
        decompressor = zlib.decompressobj(wbits)
        try:
            # size <= limit here, so the cap is at least 1 (0 would mean "no cap").
            part = decompressor.decompress(data, limit + 1 - size)
        except zlib.error as exc:
            raise IngestError(f"body is not valid {encoding}: {exc}") from exc
        size += len(part)
        if size > limit or decompressor.unconsumed_tail:
            raise IngestError(f"decompressed body exceeds the {limit} byte limit", status=413)
        if not decompressor.eof:
            raise IngestError(f"body is truncated {encoding} data")
        parts.append(part)
        data = decompressor.unused_data
        # A gzip body may hold several members (RFC 1952 §2.2; streaming writers make them): read them all.
        if wbits == zlib.MAX_WBITS or not data.startswith(GZIP_MAGIC):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def request_decode(body: bytes, *, content_type: str) -> ExportTraceServiceRequest:
    if content_type == PROTOBUF:
        try:
            return ExportTraceServiceRequest.FromString(body)
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise IngestError(f"body is not a valid ExportTraceServiceRequest protobuf: {exc}") from exc
    try:
        document = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise IngestError(f"body is not valid JSON: {exc}") from exc
    return request_from_otlp_json(document)


def _hex_to_b64(value: Any) -> Any:
    """OTLP/JSON carries IDs as hex, protobuf JSON expects base64; bad hex becomes an empty (invalid) ID."""
    if not isinstance(value, str):
        return value
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        return ""


def _fix_ids(obj: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in obj:
            obj[key] = _hex_to_b64(obj[key])


def request_from_otlp_json(document: Any) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON document. IDs are hex (not base64), unknown fields are ignored."""
    if not isinstance(document, dict):
        raise IngestError("OTLP/JSON body must be an object with a resourceSpans array")
    try:
        for resource_spans in document.get("resourceSpans") or document.get("resource_spans") or []:
            for scope_spans in resource_spans.get("scopeSpans") or resource_spans.get("scope_spans") or []:
                for span in scope_spans.get("spans") or []:
                    _fix_ids(span, ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"))
                    for link in span.get("links") or []:
                        _fix_ids(link, ("traceId", "spanId", "trace_id", "span_id"))
        return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (AttributeError, TypeError) as exc:
        raise IngestError(f"OTLP/JSON body has the wrong shape: {exc}") from exc
    except (json_format.ParseError, ValueError, binascii.Error) as exc:
        raise IngestError(f"OTLP/JSON body does not match ExportTraceServiceRequest: {exc}") from exc


def response_encode(*, content_type: str, rejected: int = 0, message: str = "") -> bytes:
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if content_type == PROTOBUF:
        return response.SerializeToString()
    if not (rejected or message):
        return b"{}"
    return orjson.dumps({"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}})


def status_encode(*, content_type: str, code: int, message: str) -> bytes:
    """A google.rpc.Status body, as the OTLP spec asks of every 4xx/5xx."""
    if content_type == PROTOBUF:
        return status_pb2.Status(code=code, message=message).SerializeToString()
    return orjson.dumps({"code": code, "message": message})
