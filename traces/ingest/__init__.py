"""Ingest: decode OTLP / Zipkin / Jaeger payloads into OTLP messages, validate and redact them into span rows.

Everything converges on `ExportTraceServiceRequest`, so validation, redaction and storage have one path.
Nothing in this package touches the database; `traces.services` writes what it produces.
"""
