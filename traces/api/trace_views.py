"""API behind the trace, compare and upload pages: analysis of one trace, the diff of two, downloads as OTLP or
Jaeger JSON, and trace files viewed without being stored (or stored into a project)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import export, page_selectors, selectors, trace_selectors, uploads
from ..ingest.errors import IngestError
from ..services import StoreBusy

ErrorSchema = inline_serializer("AnalysisError", {"error": serializers.CharField()})


def _json(document: Any) -> HttpResponse:
    """JSON by orjson: the analysis of a 100,000-span trace takes DRF's renderer (json.dumps) most of a second."""
    return HttpResponse(orjson.dumps(document), content_type="application/json")


class TraceMissing(exceptions.APIException):
    status_code = 404


def _visible[T](request: Request, trace_id: str, load: Callable[..., T | None]) -> tuple[uuid.UUID, T]:
    """Parse a trace id and load the trace among the caller's projects; 400 / 404 with a JSON message otherwise."""
    try:
        parsed = selectors.trace_id_parse(trace_id)
    except ValueError as exc:
        raise exceptions.ParseError(str(exc)) from exc
    found = load(project_ids=selectors.project_ids_visible(user=request.user), trace_id=parsed)
    if found is None:
        raise TraceMissing(f"trace {parsed.hex} not found")
    return parsed, found


def _adjust(request: Request) -> bool:
    return request.query_params.get("adjust", "true").lower() not in ("0", "false", "no", "off")


class TraceAnalysisApi(APIView):
    @extend_schema(
        summary="Analyse a trace",
        description=(
            "Critical path (Jaeger's last-finishing-child walk; consumers of producers do not block), clock-skew "
            "adjustment per span (`skew_ns`; on unless adjust=false), self time, depth, waterfall order, orphans, "
            "per-operation statistics and repeated siblings (N+1). Times are ns offsets from `start_ns`."
        ),
        parameters=[OpenApiParameter("adjust", bool, description="apply clock-skew adjustment (default true)")],
        responses={
            200: inline_serializer(
                "TraceAnalysis",
                {
                    "start_ns": serializers.CharField(),
                    "duration_ns": serializers.IntegerField(),
                    "adjusted": serializers.BooleanField(),
                    "adjusted_spans": serializers.IntegerField(),
                    "roots": serializers.ListField(child=serializers.CharField()),
                    "orphans": serializers.ListField(child=serializers.CharField()),
                    "order": serializers.ListField(child=serializers.CharField()),
                    "spans": serializers.DictField(
                        help_text="span id -> {depth, self_ns, skew_ns, critical, critical_ns}"
                    ),
                    "critical_path_ns": serializers.IntegerField(),
                    "stats": serializers.ListField(child=serializers.DictField()),
                    "repeated": serializers.ListField(child=serializers.DictField()),
                    "services": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: ErrorSchema,
            404: ErrorSchema,
        },
    )
    def get(self, request: Request, trace_id: str) -> HttpResponse | Response:
        _parsed, spans = _visible(request, trace_id, trace_selectors.trace_spans_lite)
        return _json(trace_selectors.trace_analysis_document(spans, adjust=_adjust(request)))


class TraceDiffApi(APIView):
    @extend_schema(
        summary="Compare two traces",
        description="Both trees aligned by their (service, operation) paths: count, total and self time in A and "
        "B per path, their differences, and paths added (only in B) or removed (only in A), with their subtrees.",
        parameters=[OpenApiParameter("a", str, required=True), OpenApiParameter("b", str, required=True)],
        responses={
            200: inline_serializer(
                "TraceDiff",
                {"rows": serializers.ListField(child=serializers.DictField()), "summary": serializers.DictField()},
            ),
            400: ErrorSchema,
            404: ErrorSchema,
        },
    )
    def get(self, request: Request) -> Response:
        parsed = {}
        for key in ("a", "b"):
            raw = request.query_params.get(key, "")
            if not raw:
                return Response({"error": f"parameter {key} (a trace id) is required"}, status=400)
            try:
                parsed[key] = selectors.trace_id_parse(raw)
            except ValueError as exc:
                return Response({"error": f"{key}: {exc}"}, status=400)
        project_ids = selectors.project_ids_visible(user=request.user)
        sides = []
        for trace_id in parsed.values():
            spans = trace_selectors.trace_spans_lite(project_ids=project_ids, trace_id=trace_id)
            if spans is None:
                return Response({"error": f"trace {trace_id.hex} not found"}, status=404)
            sides.append(spans)
        return Response(trace_selectors.trace_diff_document(sides[0], sides[1]))


class _FormatIsOurs(DefaultContentNegotiation):
    """`?format=` names the export format here, not a DRF renderer (DRF would answer 404 for "otlp")."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type or "application/json"


class TraceExportApi(APIView):
    content_negotiation_class = _FormatIsOurs

    @extend_schema(
        summary="Download a trace as a file",
        description="The whole trace as OTLP/JSON (an ExportTraceServiceRequest: hex IDs, int64 as strings) or as "
        "Jaeger JSON (`{data: [trace]}` as Jaeger UI downloads it), sent as an attachment. Both can be uploaded or "
        "imported again.",
        parameters=[OpenApiParameter("format", str, enum=["otlp", "jaeger"], description="default otlp")],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, 400: ErrorSchema, 404: ErrorSchema},
    )
    def get(self, request: Request, trace_id: str) -> HttpResponse | Response:
        export_format = request.query_params.get("format", "otlp").lower()
        if export_format not in export.EXPORT_FORMATS:
            return Response({"error": "format must be otlp or jaeger"}, status=400)
        parsed, document = _visible(request, trace_id, selectors.trace_document)
        body = export.trace_export(orjson.loads(document), export_format=export_format)
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="trace-{parsed.hex}.{export_format}.json"'
        return response


class TraceSummaryApi(APIView):
    @extend_schema(
        summary="Trace summary",
        description="Root, time window and counts of a trace, without its spans: cheap enough to check that a "
        "linked trace is stored.",
        responses={200: OpenApiTypes.OBJECT, 400: ErrorSchema, 404: ErrorSchema},
    )
    def get(self, request: Request, trace_id: str) -> Response:
        _parsed, summary = _visible(request, trace_id, page_selectors.trace_summary)
        summary.pop("start")
        return Response(summary)


class FileTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "file too large"


class TraceFileParser(BaseParser):
    """The request body is the trace file itself, read with the upload size limit; `request.data["file"]` is it.

    Forms are refused rather than parsed: DRF's CSRF check reads `request.POST`, and a form body would be read and
    kept in memory by Django's own parser before the limit could apply.
    """

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> dict[str, bytes]:
        media = (media_type or "").split(";")[0].strip().lower()
        if media in ("multipart/form-data", "application/x-www-form-urlencoded"):
            raise exceptions.UnsupportedMediaType(
                media, detail="send the file itself as the request body (Content-Type: application/json), not a form"
            )
        chunks = []
        size = 0
        while chunk := stream.read(1 << 20):
            size += len(chunk)
            if size > uploads.UPLOAD_MAX_BYTES:
                raise FileTooLarge(f"the file is larger than the {uploads.UPLOAD_MAX_BYTES // (1 << 20)} MiB limit")
            chunks.append(chunk)
        return {"file": b"".join(chunks)}


def _upload_body(request: Request) -> bytes:
    # An empty body never reaches the parser: DRF answers an empty dict for it.
    data = request.data
    return data.get("file", b"") if isinstance(data, dict) else b""


UploadViewSchema = inline_serializer(
    "UploadView",
    {
        "traces": serializers.ListField(child=serializers.DictField(), help_text="every trace in the file"),
        "trace_id": serializers.CharField(help_text="the trace shown"),
        "rejected": serializers.IntegerField(help_text="spans of the file that are not valid"),
        "message": serializers.CharField(),
        "document": serializers.DictField(help_text="same shape as GET /api/v1/traces/<id>"),
        "analysis": serializers.DictField(help_text="same shape as GET /api/v1/traces/<id>/analysis"),
    },
)


class UploadViewApi(APIView):
    parser_classes = [TraceFileParser]

    @extend_schema(
        summary="View a trace file without storing it",
        description="POST an OTLP/JSON, Jaeger JSON or Zipkin v2 JSON file (optionally gzipped, at most 64 MiB) as "
        "the request body. Answers the trace document and analysis of one trace of the file (`trace_id`, default "
        "the first) plus a summary of every trace in it. Nothing is stored.",
        request={"application/json": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter("trace_id", str, description="which trace of the file (default: the first)"),
            OpenApiParameter("adjust", bool, description="apply clock-skew adjustment (default true)"),
            OpenApiParameter("parts", str, enum=["all", "analysis"], description="analysis: skip the document"),
        ],
        responses={200: UploadViewSchema, 400: ErrorSchema, 404: ErrorSchema, 413: ErrorSchema},
    )
    def post(self, request: Request) -> HttpResponse | Response:
        try:
            result = uploads.upload_view(
                _upload_body(request), trace_id=request.query_params.get("trace_id") or None, adjust=_adjust(request)
            )
        except IngestError as exc:
            return Response({"error": exc.message}, status=exc.status)
        if request.query_params.get("parts") == "analysis":
            result.pop("document")
        return _json(result)


class UploadStoreApi(APIView):
    parser_classes = [TraceFileParser]

    @extend_schema(
        summary="Store a trace file into a project",
        description="POST the file as the request body; every span is ingested into `project` (you must be a "
        "member), redacted like any ingest. Answers the stored trace IDs and the page of the first one (or of "
        "`trace_id`).",
        request={"application/json": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter("project", str, required=True),
            OpenApiParameter("trace_id", str, description="the trace to open afterwards"),
        ],
        responses={
            200: inline_serializer(
                "UploadStored",
                {
                    "project": serializers.CharField(),
                    "trace_ids": serializers.ListField(child=serializers.CharField()),
                    "accepted_spans": serializers.IntegerField(),
                    "rejected_spans": serializers.IntegerField(),
                    "message": serializers.CharField(),
                    "url": serializers.CharField(),
                },
            ),
            400: ErrorSchema,
            403: ErrorSchema,
            413: ErrorSchema,
            429: ErrorSchema,
            503: ErrorSchema,
        },
    )
    def post(self, request: Request) -> Response:
        project = request.query_params.get("project", "")
        if not project:
            return Response({"error": "choose a project to store the trace in"}, status=400)
        try:
            stored = uploads.upload_store(user=request.user, project=project, body=_upload_body(request))
        except IngestError as exc:
            return Response({"error": exc.message}, status=exc.status)
        except StoreBusy as exc:
            return Response({"error": exc.message}, status=exc.status, headers={"Retry-After": str(exc.retry_after)})
        wanted = request.query_params.get("trace_id", "").lower()
        open_id = wanted if wanted in stored.trace_ids else stored.trace_ids[0]
        return Response(
            {
                "project": stored.project,
                "trace_ids": stored.trace_ids,
                "accepted_spans": stored.outcome.accepted,
                "rejected_spans": stored.outcome.rejected,
                "message": stored.outcome.message,
                "url": reverse("trace-detail", args=[open_id]),
            }
        )
