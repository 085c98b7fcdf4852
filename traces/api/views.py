"""Read API: traces by ID, trace search, services, operations and attribute autocomplete. Session or API token."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors
from ..filters import ATTR_SYNTAX, LOOKBACK_PRESETS, MAX_ATTR_KEY, TraceSearchForm


def _error(message: str, status: int) -> Response:
    return Response({"error": message}, status=status)


def _form_error(form: forms.Form) -> Response:
    """400 with one readable message (field: problem; ...) and the per-field errors."""
    message = "; ".join(
        f"{field + ': ' if field != '__all__' else ''}{' '.join(str(e) for e in errors)}"
        for field, errors in form.errors.items()
    )
    return Response({"error": message, "fields": form.errors}, status=400)


SPAN_FIELDS: dict[str, serializers.Field] = {
    "span_id": serializers.CharField(help_text="16 hex characters"),
    "parent_span_id": serializers.CharField(allow_null=True, help_text="null for a root span"),
    "name": serializers.CharField(),
    "service_name": serializers.CharField(),
    "kind": serializers.ChoiceField(choices=list(selectors.SPAN_KINDS)),
    "status_code": serializers.ChoiceField(choices=list(selectors.STATUS_CODES)),
    "status_message": serializers.CharField(),
    "start_ns": serializers.CharField(help_text="start, nanoseconds since the epoch (a string: int64)"),
    "duration_ns": serializers.IntegerField(),
    "resource_id": serializers.CharField(help_text="key into the trace's `resources`"),
    "scope": serializers.DictField(help_text="instrumentation scope {name, version}"),
    "trace_state": serializers.CharField(),
    "flags": serializers.IntegerField(),
    "attributes": serializers.DictField(),
    "events": serializers.ListField(child=serializers.DictField(), help_text="[{time_ns, name, attributes}]"),
    "links": serializers.ListField(
        child=serializers.DictField(), help_text="[{trace_id, span_id, trace_state, attributes, flags}]"
    ),
    "dropped_attributes_count": serializers.IntegerField(),
    "dropped_events_count": serializers.IntegerField(),
    "dropped_links_count": serializers.IntegerField(),
}

TRACE_SUMMARY_FIELDS: dict[str, serializers.Field] = {
    "trace_id": serializers.CharField(),
    "project": serializers.CharField(),
    "root_service": serializers.CharField(),
    "root_name": serializers.CharField(),
    "start_ns": serializers.CharField(),
    "start": serializers.DateTimeField(),
    "end_ns": serializers.CharField(),
    "duration_ns": serializers.IntegerField(),
    "span_count": serializers.IntegerField(),
    "error_count": serializers.IntegerField(),
    "services": serializers.ListField(child=serializers.CharField()),
}

TraceSchema = inline_serializer(
    "Trace",
    {
        "trace_id": serializers.CharField(),
        "projects": serializers.ListField(child=serializers.CharField()),
        "start_ns": serializers.CharField(),
        "end_ns": serializers.CharField(),
        "duration_ns": serializers.IntegerField(),
        "root_service": serializers.CharField(),
        "root_name": serializers.CharField(),
        "span_count": serializers.IntegerField(),
        "error_count": serializers.IntegerField(),
        "services": serializers.ListField(child=serializers.CharField()),
        "resources": serializers.DictField(help_text="resource id -> {service_name, attributes, schema_url}"),
        "spans": inline_serializer("Span", SPAN_FIELDS, many=True),
    },
)

ErrorSchema = inline_serializer("Error", {"error": serializers.CharField()})


class TraceDetailApi(APIView):
    @extend_schema(
        summary="Get a whole trace",
        description="Every span of the trace with parent links, resources, attributes, events and links, ordered "
        "by start time. Times are nanoseconds since the epoch, as strings (int64).",
        responses={200: TraceSchema, 400: ErrorSchema, 404: ErrorSchema},
    )
    def get(self, request: Request, trace_id: str) -> HttpResponse | Response:
        try:
            parsed = selectors.trace_id_parse(trace_id)
        except ValueError as exc:
            return _error(str(exc), 400)
        document = selectors.trace_document(
            project_ids=selectors.project_ids_visible(user=request.user), trace_id=parsed
        )
        if document is None:
            return _error(f"trace {parsed.hex} not found", 404)
        return HttpResponse(document, content_type="application/json")


class TraceSearchApi(APIView):
    @extend_schema(
        operation_id="traces_search",  # distinct from trace-by-id's, which the path alone would collide with
        summary="Search traces",
        description=(
            "Trace summaries, newest first, always bounded by a time window (default: the last hour). When service, "
            "operation, attr or status=error are given, a trace matches if one of its spans meets all of them and "
            "min/max_duration apply to that span (as in Jaeger); otherwise the filters apply to whole traces.\n\n"
            "`attr` conditions (repeatable, all must hold): `key=value` (typed: `500` also matches the number 500), "
            "`key!=value` (present with another value), `key=~regex` (PostgreSQL regex on the value's text, "
            "unanchored), `key>n`, `key>=n`, `key<n`, `key<=n` (numeric; numeric-looking strings count, other values "
            "never match), `exists:key`, `missing:key`. A condition holds on the span's attributes or on its "
            "resource's (`missing:` needs both to lack the key). A malformed condition or an invalid regex is a 400."
        ),
        parameters=[
            OpenApiParameter("service", str, description="service.name"),
            OpenApiParameter("operation", str, description="span name"),
            OpenApiParameter(
                "attr", str, many=True, description=f"span or resource attribute condition, repeatable: {ATTR_SYNTAX}"
            ),
            OpenApiParameter("min_duration", str, description="e.g. 250ms, 1.5s (a bare number is ms)"),
            OpenApiParameter("max_duration", str),
            OpenApiParameter("status", str, enum=["error", "ok"]),
            OpenApiParameter(
                "lookback",
                str,
                description=f"window ending at `end` when `start` is not given, e.g. {', '.join(LOOKBACK_PRESETS)}; "
                "default 1h",
            ),
            OpenApiParameter("start", str, description="ISO 8601 or epoch (s, ms, µs or ns)"),
            OpenApiParameter("end", str, description="ISO 8601 or epoch; default now"),
            OpenApiParameter("limit", int, description="1-1000, default 20"),
        ],
        responses={
            200: inline_serializer(
                "TraceSearchResult", {"traces": inline_serializer("TraceSummary", TRACE_SUMMARY_FIELDS, many=True)}
            ),
            400: ErrorSchema,
            503: ErrorSchema,
        },
    )
    def get(self, request: Request) -> Response:
        form = TraceSearchForm(request.query_params)
        if not form.is_valid():
            return _form_error(form)
        try:
            traces = selectors.trace_search(
                project_ids=selectors.project_ids_visible(user=request.user), query=form.query()
            )
        except selectors.SearchTooSlow as exc:
            return Response({"error": str(exc)}, status=503, headers={"Retry-After": "1"})
        return Response({"traces": traces})


class ServiceListApi(APIView):
    @extend_schema(
        summary="List services",
        responses={
            200: inline_serializer(
                "ServiceList",
                {
                    "services": inline_serializer(
                        "ServiceItem",
                        {
                            "name": serializers.CharField(),
                            "operations": serializers.IntegerField(),
                            "last_seen": serializers.DateTimeField(),
                        },
                        many=True,
                    )
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        services = selectors.service_list(project_ids=selectors.project_ids_visible(user=request.user))
        return Response({"services": services})


class OperationListApi(APIView):
    @extend_schema(
        summary="List a service's operations",
        parameters=[OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={
            200: inline_serializer(
                "OperationList",
                {
                    "service": serializers.CharField(),
                    "operations": inline_serializer(
                        "OperationItem",
                        {
                            "name": serializers.CharField(),
                            "kind": serializers.CharField(),
                            "last_seen": serializers.DateTimeField(),
                        },
                        many=True,
                    ),
                },
            ),
            404: ErrorSchema,
        },
    )
    def get(self, request: Request, name: str) -> Response:
        operations = selectors.operation_list(
            project_ids=selectors.project_ids_visible(user=request.user), service=name
        )
        if not operations:
            return _error(f"service {name!r} not found", 404)
        return Response({"service": name, "operations": operations})


class AttributeLookupForm(forms.Form):
    """Parameters of the autocomplete endpoints."""

    service = forms.CharField(required=False, max_length=500)
    limit = forms.IntegerField(required=False, min_value=1, max_value=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Added here: a class attribute named `prefix` would shadow Form.prefix (the HTML name prefix).
        self.fields["prefix"] = forms.CharField(required=False, max_length=200, strip=False)


_LOOKUP_PARAMETERS = [
    OpenApiParameter("service", str, description="only spans of this service (and its resources)"),
    OpenApiParameter(
        "prefix",
        str,
        description="what the user typed: matched anywhere, case-insensitively; matches at the start rank first",
    ),
    OpenApiParameter("limit", int, description="1-200, default 50"),
]
_LOOKUP_SAMPLE = (
    "Sampled from the spans of the newest traces (a few thousand spans) and from the stored resources, so it stays "
    "fast on a big store but can miss rare values."
)


class AttributeKeyListApi(APIView):
    @extend_schema(
        operation_id="attributes_list",
        summary="Autocomplete attribute keys",
        description=f"Span and resource attribute keys, most frequent first. {_LOOKUP_SAMPLE}",
        parameters=_LOOKUP_PARAMETERS,
        responses={
            200: inline_serializer(
                "AttributeKeyList",
                {
                    "keys": inline_serializer(
                        "AttributeKeyItem",
                        {
                            "key": serializers.CharField(),
                            "count": serializers.IntegerField(help_text="occurrences in the sample"),
                            "sources": serializers.ListField(
                                child=serializers.ChoiceField(choices=["span", "resource"])
                            ),
                        },
                        many=True,
                    )
                },
            ),
            400: ErrorSchema,
        },
    )
    def get(self, request: Request) -> Response:
        form = AttributeLookupForm(request.query_params)
        if not form.is_valid():
            return _form_error(form)
        keys = selectors.attribute_keys(
            project_ids=selectors.project_ids_visible(user=request.user),
            service=form.cleaned_data["service"],
            prefix=form.cleaned_data["prefix"],
            limit=form.cleaned_data["limit"] or 50,
        )
        return Response({"keys": keys})


class AttributeValueListApi(APIView):
    @extend_schema(
        operation_id="attribute_values_list",
        summary="Autocomplete the values of an attribute",
        description=f"Values of one span or resource attribute as text, with their JSON type, most frequent "
        f"first. {_LOOKUP_SAMPLE}",
        parameters=[OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH), *_LOOKUP_PARAMETERS],
        responses={
            200: inline_serializer(
                "AttributeValueList",
                {
                    "key": serializers.CharField(),
                    "values": inline_serializer(
                        "AttributeValueItem",
                        {
                            "value": serializers.CharField(help_text="the value as text"),
                            "type": serializers.ChoiceField(choices=["string", "number", "boolean", "array", "object"]),
                            "count": serializers.IntegerField(help_text="occurrences in the sample"),
                        },
                        many=True,
                    ),
                },
            ),
            400: ErrorSchema,
        },
    )
    def get(self, request: Request, key: str) -> Response:
        form = AttributeLookupForm(request.query_params)
        if not form.is_valid():
            return _form_error(form)
        if not key or len(key) > MAX_ATTR_KEY or "\x00" in key:
            return _error(f"key must be 1-{MAX_ATTR_KEY} characters", 400)
        values = selectors.attribute_values(
            project_ids=selectors.project_ids_visible(user=request.user),
            key=key,
            service=form.cleaned_data["service"],
            prefix=form.cleaned_data["prefix"],
            limit=form.cleaned_data["limit"] or 50,
        )
        return Response({"key": key, "values": values})
