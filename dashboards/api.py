"""Dashboard read API: the per-trace service graph (rollup endpoints will join it)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from traces.api.trace_views import ErrorSchema, _json, _visible

from . import selectors

_Node = inline_serializer(
    "ServiceGraphNode",
    {
        "id": serializers.CharField(),
        "name": serializers.CharField(),
        "kind": serializers.ChoiceField(
            choices=["service", "database", "messaging", "external", "clients", "unknown"],
            help_text="service: instrumented; clients: callers of root spans; the rest are virtual nodes",
        ),
        "calls_in": serializers.IntegerField(),
        "calls_out": serializers.IntegerField(),
        "errors": serializers.IntegerField(help_text="failed calls into this node"),
    },
    many=True,
)
_Edge = inline_serializer(
    "ServiceGraphEdge",
    {
        "source": serializers.CharField(),
        "target": serializers.CharField(),
        "calls": serializers.IntegerField(),
        "errors": serializers.IntegerField(),
        "p50_ns": serializers.IntegerField(),
        "p95_ns": serializers.IntegerField(),
        "connection": serializers.ChoiceField(choices=["http/rpc", "database", "messaging", "parent-child", "entry"]),
    },
    many=True,
)


class TraceServiceGraphApi(APIView):
    @extend_schema(
        summary="Service graph of a trace",
        description=(
            "The services one trace touched and the calls between them. A client/producer span and its server/"
            "consumer child in another service make one call (client-observed latency); a client span without an "
            "instrumented callee calls a virtual node named from peer.service, db.system + db.name, "
            "messaging.system + destination or server.address; a cross-service parent-child without client/server "
            "kinds is a `parent-child` call; a root server span is called by `clients`. `counts` tells how many "
            "calls each rule found; `unpaired` counts spans whose other half is missing."
        ),
        responses={
            200: inline_serializer(
                "TraceServiceGraph",
                {
                    "nodes": _Node,
                    "edges": _Edge,
                    "counts": inline_serializer(
                        "ServiceGraphCounts",
                        {
                            key: serializers.IntegerField()
                            for key in ("paired", "virtual", "parent_child", "entry", "unpaired")
                        },
                    ),
                    "span_count": serializers.IntegerField(),
                },
            ),
            400: ErrorSchema,
            404: ErrorSchema,
        },
    )
    def get(self, request: Request, trace_id: str) -> HttpResponse:
        _parsed, graph = _visible(request, trace_id, selectors.trace_service_graph)
        return _json(graph)
