"""Ingest endpoints: OTLP/HTTP, Zipkin v2 and Jaeger JSON. Authenticated by project ingest token.

These are plain Django views, not DRF: OTLP answers in the request's own encoding (protobuf or JSON) with
`google.rpc.Status` bodies on errors, and the body is read with our own limit (enforced after decompression).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ..authentication import bearer_token, ingest_token_resolve
from ..ingest import convert, otlp
from ..ingest.errors import IngestError
from ..models import IngestToken
from ..services import StoreBusy, spans_ingest

logger = logging.getLogger(__name__)

# google.rpc.Code values for the Status body.
RPC_CODE = {400: 3, 401: 16, 403: 7, 405: 12, 413: 8, 415: 3, 429: 8, 503: 14}


def _body_read(request: HttpRequest, *, limit: int) -> bytes:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise IngestError(f"body of {declared} bytes exceeds the {limit} byte limit", status=413)
    chunks = []
    size = 0
    while True:
        chunk = request.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise IngestError(f"body exceeds the {limit} byte limit", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _payload(request: HttpRequest) -> bytes:
    limit = settings.INGEST_MAX_BODY_BYTES
    body = _body_read(request, limit=limit)
    return otlp.body_decompress(body, encoding=request.headers.get("Content-Encoding", ""), limit=limit)


def _token(request: HttpRequest) -> IngestToken:
    token = ingest_token_resolve(bearer_token(request))
    if token is None:
        raise IngestError("missing, unknown or revoked ingest token (send Authorization: Bearer <token>)", status=401)
    return token


def _busy_headers(response: HttpResponse, exc: StoreBusy) -> HttpResponse:
    response["Retry-After"] = str(exc.retry_after)
    return response


@csrf_exempt
@login_not_required
def otlp_traces(request: HttpRequest) -> HttpResponse:
    """OTLP/HTTP `POST /v1/traces` (protobuf or JSON, optionally gzip)."""
    content_type = otlp.content_type_parse(request.headers.get("Content-Type", ""))
    reply_type = content_type or otlp.JSON

    def fail(status: int, message: str) -> HttpResponse:
        body = otlp.status_encode(content_type=reply_type, code=RPC_CODE.get(status, 2), message=message)
        return HttpResponse(body, status=status, content_type=reply_type)

    if request.method != "POST":
        response = fail(405, "use POST")
        response["Allow"] = "POST"
        return response
    if content_type is None:
        return fail(415, "Content-Type must be application/x-protobuf or application/json")
    try:
        token = _token(request)
        export_request = otlp.request_decode(_payload(request), content_type=content_type)
        outcome = spans_ingest(project_id=token.project_id, request=export_request)
    except IngestError as exc:
        return fail(exc.status, exc.message)
    except StoreBusy as exc:
        return _busy_headers(fail(exc.status, exc.message), exc)
    body = otlp.response_encode(content_type=content_type, rejected=outcome.rejected, message=outcome.message)
    return HttpResponse(body, status=200, content_type=content_type)


def _json_ingest(request: HttpRequest, *, convert_document: Callable[[Any], Any], success_status: int) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse({"error": "use POST"}, status=405, headers={"Allow": "POST"})
    media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media not in ("application/json", ""):
        return JsonResponse({"error": "Content-Type must be application/json"}, status=415)
    try:
        token = _token(request)
        body = _payload(request)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise IngestError(f"body is not valid JSON: {exc}") from exc
        export_request = convert_document(document)
        traces = convert.traces_by_id(export_request)
        outcome = spans_ingest(project_id=token.project_id, request=export_request)
    except IngestError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    except StoreBusy as exc:
        return _busy_headers(JsonResponse({"error": exc.message}, status=exc.status), exc)  # type: ignore[return-value]
    return JsonResponse(
        {
            "accepted_spans": outcome.accepted,
            "rejected_spans": outcome.rejected,
            "duplicate_spans": outcome.duplicates,
            "message": outcome.message,
            "trace_ids": sorted(trace_id.hex() for trace_id in traces if len(trace_id) == 16),
        },
        status=success_status,
    )


@csrf_exempt
@login_not_required
def zipkin_spans(request: HttpRequest) -> HttpResponse:
    """Zipkin v2 `POST /api/v2/spans` (JSON list of spans) -> 202."""
    return _json_ingest(request, convert_document=convert.zipkin_to_otlp, success_status=202)


@csrf_exempt
@login_not_required
def jaeger_import(request: HttpRequest) -> HttpResponse:
    """Jaeger JSON as Jaeger UI downloads it (`{"data": [trace, ...]}`) -> 200 with the imported trace IDs."""
    return _json_ingest(request, convert_document=convert.jaeger_to_otlp, success_status=200)
