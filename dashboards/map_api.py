"""Service map API: the dependency graph of a time window, and one edge's example calls. Read from rollups."""

from __future__ import annotations

from typing import Any

from django import forms
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from traces.selectors import project_ids_visible

from .forms import EdgeForm, ServiceMapForm
from .map_selectors import service_map, service_map_edge
from .red_api import TIME_PARAMETERS

_ERROR = inline_serializer("ServiceMapError", {"error": serializers.CharField()})


def _form_error(form: forms.Form) -> Response:
    messages = [str(e) for e in form.non_field_errors()]
    messages += [
        f"{field}: {' '.join(str(e) for e in errors)}" for field, errors in form.errors.items() if field != "__all__"
    ]
    return Response({"error": " ".join(messages)}, status=400)


class ServiceMapApi(APIView):
    @extend_schema(
        summary="Service map",
        description="The dependency graph of a time window, from edge rollups. Nodes are services, virtual nodes "
        "for uninstrumented callees (database, messaging, external, unknown) and `clients` (callers of root "
        "SERVER/CONSUMER spans), with requests, rate per minute, error % and p95, the count of unpaired spans, and "
        "a layered layout (`layer` = column left to right in call order, `order` = row). Edges carry calls, "
        "calls per minute, error %, caller-observed p50/p95/p99 and callee-observed p95 (`server_p95_ns`); "
        "`back_edge` marks an edge that closes a cycle. `service` + `hops` keep a neighbourhood; `compare_at` "
        "splits the window and gives each node and edge `change` = {before, after, slower, more_errors, status} "
        '(status "new" when it had no calls before, "gone" when none after). '
        "A trace's calls are paired once it has been idle for EDGE_IDLE_SECONDS; `lag_seconds` says how far the "
        "map trails ingest.",
        parameters=[
            *TIME_PARAMETERS,
            OpenApiParameter("service", str, description="keep only nodes within `hops` calls of this one"),
            OpenApiParameter("hops", int, description="neighbourhood radius, 1 (default) to 6"),
            OpenApiParameter("compare_at", str, description="ISO 8601 or epoch inside the window: before/after"),
        ],
        responses={
            200: inline_serializer(
                "ServiceMap",
                {
                    "window": serializers.DictField(),
                    "lag_seconds": serializers.FloatField(),
                    "focus": serializers.DictField(allow_null=True),
                    "compare": serializers.DictField(allow_null=True),
                    "nodes": serializers.ListField(child=serializers.DictField()),
                    "edges": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: _ERROR,
        },
    )
    def get(self, request: Request) -> Response:
        form = ServiceMapForm(request.query_params)
        if not form.is_valid():
            return _form_error(form)
        data: dict[str, Any] = form.cleaned_data
        return Response(
            service_map(
                project_ids=project_ids_visible(user=request.user),
                start_ns=data["start_ns"],
                end_ns=data["end_ns"],
                service=data.get("service") or None,
                hops=data["hops"],
                compare_at_ns=data["compare_at_ns"],
            )
        )


class ServiceMapEdgeApi(APIView):
    @extend_schema(
        summary="One edge of the service map",
        description="Calls from `source` to `target` in the window: figures as on the map and up to 20 example "
        "calls (the slowest, failed ones, the most recent), each with its trace id and the caller and callee span "
        "ids, to open as `/traces/<trace_id>/?span=<span id>`. 404 when the edge had no calls in the window.",
        parameters=[
            *TIME_PARAMETERS,
            OpenApiParameter("source", str, required=True, description="calling service (or `clients`)"),
            OpenApiParameter("target", str, required=True, description="called service or virtual node"),
        ],
        responses={
            200: inline_serializer(
                "ServiceMapEdge",
                {
                    "source": serializers.CharField(),
                    "target": serializers.CharField(),
                    "window": serializers.DictField(),
                    "calls": serializers.IntegerField(),
                    "calls_per_minute": serializers.FloatField(),
                    "errors": serializers.IntegerField(),
                    "error_percent": serializers.FloatField(),
                    "p50_ns": serializers.IntegerField(allow_null=True),
                    "p95_ns": serializers.IntegerField(allow_null=True),
                    "p99_ns": serializers.IntegerField(allow_null=True),
                    "server_p95_ns": serializers.IntegerField(allow_null=True),
                    "examples": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: _ERROR,
            404: _ERROR,
        },
    )
    def get(self, request: Request) -> Response:
        form = EdgeForm(request.query_params)
        if not form.is_valid():
            return _form_error(form)
        data = form.cleaned_data
        found = service_map_edge(
            project_ids=project_ids_visible(user=request.user),
            source=data["source"],
            target=data["target"],
            start_ns=data["start_ns"],
            end_ns=data["end_ns"],
        )
        if found is None:
            return Response(
                {"error": f"no calls from {data['source']!r} to {data['target']!r} in this time range"}, status=404
            )
        return Response(found)
