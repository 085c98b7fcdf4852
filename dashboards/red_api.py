"""RED metrics API (rate, errors, duration) per service, read from rollups."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from traces.selectors import project_ids_visible

from .forms import TimeRangeForm
from .rollup_selectors import service_red_detail, service_red_list

TIME_PARAMETERS = [
    OpenApiParameter("lookback", str, description="window ending at `end`: 15m, 1h (default), 6h, 24h, 7d"),
    OpenApiParameter("start", str, description="ISO 8601 or epoch; overrides lookback"),
    OpenApiParameter("end", str, description="ISO 8601 or epoch; default now"),
]


class ServiceRedListApi(APIView):
    @extend_schema(
        summary="Services with RED metrics",
        description="Per service: requests (SERVER and CONSUMER spans, or all spans for a service without any), "
        "rate, error %, p50/p95/p99 (from log-bucket histograms, within 2 %), and sparkline series. Read from "
        "per-minute rollups (per-hour above 6 h); `lag_seconds` says how far rollups trail ingest.",
        parameters=TIME_PARAMETERS,
        responses={
            200: inline_serializer(
                "ServiceRedList",
                {
                    "window": serializers.DictField(),
                    "lag_seconds": serializers.FloatField(),
                    "services": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: inline_serializer("RedError", {"error": serializers.CharField()}),
        },
    )
    def get(self, request: Request) -> Response:
        form = TimeRangeForm(request.query_params)
        if not form.is_valid():
            return Response(
                {"error": " ".join(str(e) for e in form.non_field_errors()) or str(form.errors)}, status=400
            )
        return Response(
            service_red_list(
                project_ids=project_ids_visible(user=request.user),
                start_ns=form.cleaned_data["start_ns"],
                end_ns=form.cleaned_data["end_ns"],
            )
        )


class ServiceRedDetailApi(APIView):
    @extend_schema(
        summary="One service's RED metrics",
        description="Rate, error % and p50/p95/p99 over time with exemplar traces (the slowest span of each point, "
        "and an error one), the same figures per operation, the slowest traces, the most recent error traces, and "
        "the services calling it (`upstream`) and called by it (`downstream`, virtual nodes included) with calls "
        "per minute, error % and p95 from edge rollups. "
        "Read from rollups; 404 for a service never seen.",
        parameters=TIME_PARAMETERS,
        responses={
            200: inline_serializer(
                "ServiceRedDetail",
                {
                    "name": serializers.CharField(),
                    "window": serializers.DictField(),
                    "lag_seconds": serializers.FloatField(),
                    "totals": serializers.DictField(),
                    "series": serializers.DictField(),
                    "exemplars": serializers.ListField(child=serializers.DictField()),
                    "operations": serializers.ListField(child=serializers.DictField()),
                    "slowest_traces": serializers.ListField(child=serializers.DictField()),
                    "recent_error_traces": serializers.ListField(child=serializers.DictField()),
                    "upstream": serializers.ListField(child=serializers.DictField()),
                    "downstream": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: inline_serializer("RedDetailError", {"error": serializers.CharField()}),
            404: inline_serializer("RedDetailMissing", {"error": serializers.CharField()}),
        },
    )
    def get(self, request: Request, name: str) -> Response:
        form = TimeRangeForm(request.query_params)
        if not form.is_valid():
            return Response(
                {"error": " ".join(str(e) for e in form.non_field_errors()) or str(form.errors)}, status=400
            )
        detail = service_red_detail(
            project_ids=project_ids_visible(user=request.user),
            service=name,
            start_ns=form.cleaned_data["start_ns"],
            end_ns=form.cleaned_data["end_ns"],
        )
        if detail is None:
            return Response({"error": f"service {name!r} not found"}, status=404)
        return Response(detail)
