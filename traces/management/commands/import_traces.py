from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from traces.ingest.convert import document_to_otlp, spans_count
from traces.ingest.errors import IngestError
from traces.models import Project
from traces.services import spans_ingest

CHUNK_SPANS = 2000


def _chunks(request: ExportTraceServiceRequest, size: int) -> list[ExportTraceServiceRequest]:
    """Split a request into requests of at most `size` spans, keeping resource and scope for each span."""
    chunks: list[ExportTraceServiceRequest] = []
    current = ExportTraceServiceRequest()
    count = 0
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            target = None
            for span in scope_spans.spans:
                if target is None or count >= size:
                    if count >= size:
                        chunks.append(current)
                        current, count = ExportTraceServiceRequest(), 0
                    rs = current.resource_spans.add()
                    rs.resource.CopyFrom(resource_spans.resource)
                    rs.schema_url = resource_spans.schema_url
                    target = rs.scope_spans.add()
                    target.scope.CopyFrom(scope_spans.scope)
                target.spans.append(span)
                count += 1
    if count:
        chunks.append(current)
    return chunks


class Command(BaseCommand):
    help = "Import trace files (Jaeger JSON as Jaeger UI downloads it, OTLP JSON, or Zipkin v2 JSON) into a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--project", default="demo", help="project to import into (created if missing)")

    def _progress(self, done: int, total: int, label: str) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        self.stderr.write(f"\r{label} [{bar}] {done}/{total} spans", ending=end)
        sys.stderr.flush()

    def handle(self, *args: Any, **options: Any) -> None:
        from traces.services import project_get_or_create

        project: Project = project_get_or_create(name=options["project"])[0]
        totals = {"accepted": 0, "rejected": 0, "duplicates": 0}
        for path in options["files"]:
            try:
                document = orjson.loads(path.read_bytes())
                request = document_to_otlp(document)
            except FileNotFoundError as exc:
                raise CommandError(f"{path}: no such file") from exc
            except orjson.JSONDecodeError as exc:
                raise CommandError(f"{path}: not valid JSON ({exc})") from exc
            except IngestError as exc:
                raise CommandError(f"{path}: {exc.message}") from exc
            total = spans_count(request)
            done = 0
            self._progress(0, total, path.name)
            for chunk in _chunks(request, CHUNK_SPANS):
                outcome = spans_ingest(project_id=project.id, request=chunk)
                totals["accepted"] += outcome.accepted - outcome.duplicates
                totals["rejected"] += outcome.rejected
                totals["duplicates"] += outcome.duplicates
                done += spans_count(chunk)
                self._progress(done, total, path.name)
                if outcome.message:
                    self.stderr.write(f"{path.name}: {outcome.message}")
        self.stdout.write(
            f"imported {totals['accepted']} span(s) into {project.name}; "
            f"{totals['duplicates']} already stored, {totals['rejected']} rejected"
        )
