"""OpenAPI descriptions drf-spectacular cannot infer."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "traces.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token from `manage.py create_api_token --user NAME` (read-only).",
        }


def _ingest_operation(summary: str, description: str, content: dict[str, Any], ok: str) -> dict[str, Any]:
    error = {"description": 'a google.rpc.Status (OTLP) or {"error": message} body'}
    return {
        "post": {
            "operationId": summary.lower().replace(" ", "_").replace("/", ""),
            "summary": summary,
            "description": description,
            "tags": ["ingest"],
            "security": [{"ingestToken": []}],
            "requestBody": {"required": True, "content": content},
            "responses": {
                ok: {"description": "stored (committed) — with partial success details when some spans were invalid"},
                "400": error,
                "401": {"description": "missing, unknown or revoked ingest token"},
                "413": {"description": "body above INGEST_MAX_BODY_BYTES (also after decompression)"},
                "415": {"description": "unsupported Content-Type or Content-Encoding"},
                "429": {"description": "ingest slots full; retry after the Retry-After header"},
                "503": {"description": "store unavailable or too slow; retry after the Retry-After header"},
            },
        }
    }


def ingest_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add the ingest endpoints, which are plain Django views (OTLP answers in protobuf too), to the schema."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    any_json = {"schema": {"type": "object"}}
    result.setdefault("paths", {}).update(
        {
            "/v1/traces": _ingest_operation(
                "OTLP traces",
                "OTLP/HTTP ExportTraceServiceRequest as protobuf or OTLP/JSON (hex IDs), optionally with "
                "Content-Encoding: gzip. The response uses the request's encoding.",
                {"application/x-protobuf": binary, "application/json": any_json},
                "200",
            ),
            "/api/v2/spans": _ingest_operation(
                "Zipkin spans",
                "Zipkin v2 JSON ListOfSpans.",
                {"application/json": {"schema": {"type": "array"}}},
                "202",
            ),
            "/api/v1/import/jaeger": _ingest_operation(
                "Jaeger import",
                'Jaeger JSON as Jaeger UI downloads it ({"data": [trace, ...]}) or a bare trace object.',
                {"application/json": any_json},
                "200",
            ),
        }
    )
    result.setdefault("components", {}).setdefault("securitySchemes", {})["ingestToken"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A project ingest token from `manage.py create_ingest_token --project NAME` (write-only); "
        "X-Api-Key: <token> works too.",
    }
    return result
