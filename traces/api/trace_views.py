"""Read API for the trace page: server-side analysis of one trace, and the diff of two."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, trace_selectors

ErrorSchema = inline_serializer("AnalysisError", {"error": serializers.CharField()})


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
    def get(self, request: Request, trace_id: str) -> Response:
        try:
            parsed = selectors.trace_id_parse(trace_id)
        except ValueError as exc:
            return Response({"error": str(exc)}, status=400)
        spans = trace_selectors.trace_spans_lite(
            project_ids=selectors.project_ids_visible(user=request.user), trace_id=parsed
        )
        if spans is None:
            return Response({"error": f"trace {parsed.hex} not found"}, status=404)
        return Response(trace_selectors.trace_analysis_document(spans, adjust=_adjust(request)))


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
