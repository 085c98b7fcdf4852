"""Celery tasks: thin adapters over services."""

from __future__ import annotations

from celery import shared_task


@shared_task(autoretry_for=(Exception,), retry_backoff=30, max_retries=5)
def span_partitions_maintain_task() -> dict[str, list[str]]:
    from traces.services import span_partitions_maintain

    report = span_partitions_maintain()
    return {"created": report.created, "dropped": report.dropped}
