"""Celery tasks of the dashboards app: thin adapters over services."""

from __future__ import annotations

import time

from celery import shared_task


@shared_task(autoretry_for=(Exception,), retry_backoff=5, max_retries=3)
def rollups_compact_task() -> int:
    """Merge pending rollup deltas; keep going (up to ~8 s) while a backlog remains."""
    from dashboards.services import rollups_compact

    merged = 0
    deadline = time.monotonic() + 8
    while True:
        report = rollups_compact()
        merged += report.deltas
        if report.busy or report.deltas < 2000 or time.monotonic() > deadline:
            return merged
