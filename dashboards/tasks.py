"""Celery tasks of the dashboards app: thin adapters over services."""

from __future__ import annotations

import time

from celery import shared_task


@shared_task(autoretry_for=(Exception,), retry_backoff=5, max_retries=3)
def rollups_compact_task() -> int:
    """Merge pending rollup deltas, then pair idle traces into edge rollups; keep going (up to ~8 s each) while a
    backlog remains. Returns the number of deltas merged plus traces paired."""
    from dashboards.services import edges_rollup, rollups_compact

    done = 0
    deadline = time.monotonic() + 8
    while True:
        report = rollups_compact()
        done += report.deltas
        if report.busy or report.deltas < 2000 or time.monotonic() > deadline:
            break
    deadline = time.monotonic() + 8
    while True:
        edges = edges_rollup()
        done += edges.traces
        if edges.busy or not edges.traces or not edges.pending or time.monotonic() > deadline:
            return done


@shared_task(autoretry_for=(Exception,), retry_backoff=60, max_retries=3)
def edge_states_expire_task() -> int:
    from django.conf import settings

    from dashboards.services import edge_states_expire

    return edge_states_expire(older_than_days=settings.TRACE_RETENTION_DAYS)
