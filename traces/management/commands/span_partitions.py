from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from traces.services import span_partitions_maintain


class Command(BaseCommand):
    help = "Create span partitions ahead of time and drop those past TRACE_RETENTION_DAYS (also run by Celery beat)."

    def handle(self, *args: Any, **options: Any) -> None:
        report = span_partitions_maintain()
        self.stdout.write(f"created {len(report.created)} partition(s) {' '.join(report.created)}".rstrip())
        self.stdout.write(f"dropped {len(report.dropped)} partition(s) {' '.join(report.dropped)}".rstrip())
