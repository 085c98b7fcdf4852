"""Writes for the trace store: storing span batches, tokens, projects, partition maintenance."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from . import partitions
from .ingest.redaction import Redactor, Rule
from .ingest.rows import (
    COL_KIND,
    COL_NAME,
    COL_RESOURCE,
    COL_SERVICE,
    COL_START,
    COL_TRACE,
    SPAN_COLUMNS,
    SpanBatch,
    traces_aggregate,
)
from .models import (
    ApiToken,
    IngestToken,
    Project,
    ProjectIngestSettings,
    ProjectMembership,
    RedactionRule,
    token_generate,
    token_hash,
)

logger = logging.getLogger(__name__)


class StoreBusy(Exception):
    """The store cannot take this batch now; the client should retry after `retry_after` seconds."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = settings.INGEST_RETRY_AFTER_SECONDS


@dataclass(frozen=True)
class StoreResult:
    stored: int
    duplicates: int
    traces: int


# Resource fingerprints already stored, per process: (project_id, fingerprint) -> resource id.
_resource_ids: dict[tuple[int, bytes], int] = {}
_resource_lock = threading.Lock()
_COPY_SQL = f"COPY spans ({', '.join(SPAN_COLUMNS)}) FROM STDIN"
_ADMISSION_LOCK_SPACE = 771_001  # pg advisory lock key space for ingest admission slots

# Aggregates travel as one JSON document: psycopg dumps a Python list element by element, which cost more than the
# COPY itself for a 512-span batch; json_to_recordset unpacks it server-side.
_TRACES_UPSERT = """
INSERT INTO traces AS t (project_id, trace_id, start_ns, end_ns, root_service, root_name, span_count, error_count,
                         services, updated_at)
SELECT %s, u.trace_id, u.start_ns, u.end_ns, u.root_service, u.root_name, u.span_count, u.error_count,
       u.services, now()
FROM json_to_recordset(%s::json)
     AS u(trace_id uuid, start_ns bigint, end_ns bigint, root_service text, root_name text, span_count int,
          error_count int, services text[])
ORDER BY u.trace_id
ON CONFLICT (trace_id, project_id) DO UPDATE SET
    start_ns = least(t.start_ns, excluded.start_ns),
    end_ns = greatest(t.end_ns, excluded.end_ns),
    root_service = CASE WHEN excluded.root_service <> '' THEN excluded.root_service ELSE t.root_service END,
    root_name = CASE WHEN excluded.root_service <> '' THEN excluded.root_name ELSE t.root_name END,
    span_count = t.span_count + excluded.span_count,
    error_count = t.error_count + excluded.error_count,
    services = CASE WHEN excluded.services <@ t.services THEN t.services
                    ELSE ARRAY(SELECT DISTINCT s FROM unnest(t.services || excluded.services) s ORDER BY 1) END,
    updated_at = now()
"""

# last_seen is only rewritten once a minute per operation, so steady traffic does not churn this table.
_OPERATIONS_UPSERT = """
INSERT INTO traces_operation AS o (project_id, service_name, name, kind, first_seen, last_seen)
SELECT %s, u.service_name, u.name, u.kind, now(), now()
FROM json_to_recordset(%s::json) AS u(service_name text, name text, kind smallint)
ORDER BY 2, 3, 4
ON CONFLICT (project_id, service_name, name, kind) DO UPDATE SET last_seen = now()
WHERE o.last_seen < now() - interval '1 minute'
"""


def _resource_ids_ensure(*, project_id: int, batch: SpanBatch) -> list[int]:
    """Stored ids of the batch's resources, creating missing ones.

    New resources are committed in their own short transaction, in fingerprint order, before the span batch: held
    inside the batch transaction, concurrent first batches of fresh workers locked them in different orders and
    deadlocked. A resource whose spans then fail to store is harmless (it is deduplicated reference data).
    """
    missing = {
        info.fingerprint: info for info in batch.resources if (project_id, info.fingerprint) not in _resource_ids
    }
    if missing:
        document = [
            {
                "fingerprint": info.fingerprint.hex(),
                "service_name": info.service_name,
                "attributes": info.attributes,
                "schema_url": info.schema_url,
            }
            for _fingerprint, info in sorted(missing.items())
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO traces_resource (project_id, fingerprint, service_name, attributes, schema_url, first_seen)
                SELECT %s, decode(u.fingerprint, 'hex'), u.service_name, u.attributes, u.schema_url, now()
                FROM json_to_recordset(%s::json) AS u(fingerprint text, service_name text, attributes jsonb,
                                                      schema_url text)
                ORDER BY u.fingerprint
                ON CONFLICT (project_id, fingerprint) DO NOTHING
                """,
                [project_id, orjson.dumps(document).decode()],
            )
        # A fresh statement sees rows that concurrent batches committed while this insert waited on them.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT fingerprint, id FROM traces_resource WHERE project_id = %s AND fingerprint = ANY(%s)",
                [project_id, list(missing)],
            )
            found = {(project_id, bytes(fingerprint)): resource_id for fingerprint, resource_id in cursor.fetchall()}
        with _resource_lock:
            if len(_resource_ids) > 50_000:
                _resource_ids.clear()
            _resource_ids.update(found)
        return [
            _resource_ids.get((project_id, info.fingerprint)) or found[(project_id, info.fingerprint)]
            for info in batch.resources
        ]
    return [_resource_ids[(project_id, info.fingerprint)] for info in batch.resources]


def _admission_slot_take(cursor: Any) -> None:
    cursor.execute(
        "SELECT s FROM generate_series(1, %s) s WHERE pg_try_advisory_xact_lock(%s, s) LIMIT 1",
        [settings.INGEST_MAX_CONCURRENCY, _ADMISSION_LOCK_SPACE],
    )
    if cursor.fetchone() is None:
        raise StoreBusy(
            f"the store is busy ({settings.INGEST_MAX_CONCURRENCY} ingest batches in flight); retry later", status=429
        )


def _copy_rows(cursor: Any, sql: str, rows: list[list[Any]]) -> None:
    # COPY goes straight to the psycopg cursor; wrap its errors into Django's so callers catch one family.
    with connection.wrap_database_errors, cursor.copy(sql) as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)


def _rows_insert_idempotent(cursor: Any, rows: list[list[Any]]) -> list[list[Any]]:
    """Insert rows skipping ones already stored (exporter retries); return the rows that were new."""
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS spans_incoming (LIKE spans INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    cursor.execute("DELETE FROM spans_incoming")
    _copy_rows(cursor, _COPY_SQL.replace("COPY spans", "COPY spans_incoming"), rows)
    columns = ", ".join(SPAN_COLUMNS)
    cursor.execute(
        f"""
        INSERT INTO spans ({columns})
        SELECT DISTINCT ON (trace_id, span_id, kind, start_ns, project_id) {columns} FROM spans_incoming
        ON CONFLICT DO NOTHING
        RETURNING replace(trace_id::text, '-', ''), span_id, kind, start_ns
        """
    )
    inserted = {(t, s, k, st) for t, s, k, st in cursor.fetchall()}
    fresh = []
    for row in rows:
        key = (row[COL_TRACE], row[3], row[COL_KIND], row[COL_START])
        if key in inserted:
            inserted.discard(key)  # a span repeated inside one batch counts once
            fresh.append(row)
    return fresh


def _traces_upsert(cursor: Any, *, project_id: int, rows: list[list[Any]]) -> int:
    aggregates = traces_aggregate(rows)
    if not aggregates:
        return 0
    document = [
        {
            "trace_id": trace_id,
            "start_ns": agg.start_ns,
            "end_ns": agg.end_ns,
            "root_service": agg.root_service,
            "root_name": agg.root_name,
            "span_count": agg.span_count,
            "error_count": agg.error_count,
            "services": sorted(agg.services),
        }
        for trace_id, agg in aggregates.items()
    ]
    cursor.execute(_TRACES_UPSERT, [project_id, orjson.dumps(document).decode()])
    return len(aggregates)


# (project, service, operation, kind) -> monotonic time this process last wrote it. Writing only stale entries keeps
# ingest transactions from locking the same operation rows (an ON CONFLICT row is locked even when not updated).
_operations_written: dict[tuple[int, str, str, int], float] = {}


def _operations_upsert(cursor: Any, *, project_id: int, rows: list[list[Any]]) -> None:
    import time

    now = time.monotonic()
    seen = {(project_id, row[COL_SERVICE], row[COL_NAME], row[COL_KIND]) for row in rows}
    stale = sorted(key for key in seen if now - _operations_written.get(key, -1e9) > 60)
    if not stale:
        return
    document = [{"service_name": service, "name": name, "kind": kind} for _p, service, name, kind in stale]
    cursor.execute(_OPERATIONS_UPSERT, [project_id, orjson.dumps(document).decode()])
    if len(_operations_written) > 100_000:
        _operations_written.clear()
    # Remembered only after commit: a rolled-back batch must not hide a new operation for a minute.
    transaction.on_commit(lambda: _operations_written.update(dict.fromkeys(stale, now)))


def _redaction_counts_add(cursor: Any, *, project_id: int, counts: dict[str, int]) -> None:
    if not counts:
        return
    rules, values = zip(*sorted(counts.items()))
    cursor.execute(
        """
        INSERT INTO traces_redactioncount AS r (project_id, day, rule, count)
        SELECT %s, (now() AT TIME ZONE 'UTC')::date, u.rule, u.n FROM unnest(%s::text[], %s::bigint[]) AS u(rule, n)
        ORDER BY u.rule
        ON CONFLICT (project_id, day, rule) DO UPDATE SET count = r.count + excluded.count
        """,
        [project_id, list(rules), list(values)],
    )


def span_batch_store(
    *, project_id: int, batch: SpanBatch, redaction_counts: dict[str, int] | None = None
) -> StoreResult:
    """Store a validated batch durably (committed before returning). Re-sent spans are stored once.

    Raises StoreBusy when the store cannot take the batch (admission slots full: 429; database unavailable or too
    slow: 503). Nothing is acknowledged unless this returns.
    """
    from django.db import DatabaseError, OperationalError

    if not batch.rows and not redaction_counts:
        return StoreResult(stored=0, duplicates=0, traces=0)
    try:
        resource_ids = _resource_ids_ensure(project_id=project_id, batch=batch) if batch.rows else []
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = %s", [settings.INGEST_STATEMENT_TIMEOUT_MS])
            _admission_slot_take(cursor)
            for row in batch.rows:
                row[COL_RESOURCE] = resource_ids[row[COL_RESOURCE]]
            # Fast path: plain COPY. Retried spans violate spans_identity; only then pay for the idempotent insert.
            stored_rows = batch.rows
            try:
                with transaction.atomic():
                    _copy_rows(cursor, _COPY_SQL, batch.rows)
            except IntegrityError:
                stored_rows = _rows_insert_idempotent(cursor, batch.rows)
            traces = _traces_upsert(cursor, project_id=project_id, rows=stored_rows)
            if stored_rows:
                _operations_upsert(cursor, project_id=project_id, rows=stored_rows)
                if settings.ROLLUPS_ENABLED:
                    from dashboards.services import rollup_delta_record

                    # Same transaction as the spans: a batch is rolled up exactly once, whatever happens later.
                    rollup_delta_record(cursor, project_id=project_id, rows=stored_rows)
            _redaction_counts_add(cursor, project_id=project_id, counts=redaction_counts or {})
    except StoreBusy:
        raise
    except OperationalError as exc:
        logger.warning("ingest store unavailable: %s", exc)
        raise StoreBusy("the trace store is unavailable or too slow right now; retry later", status=503) from exc
    except DatabaseError as exc:
        if getattr(exc, "sqlstate", None) == "57014" or "statement timeout" in str(exc):
            raise StoreBusy("the trace store is too slow right now; retry later", status=503) from exc
        raise
    return StoreResult(stored=len(stored_rows), duplicates=len(batch.rows) - len(stored_rows), traces=traces)


def redactor_for_project(*, project_id: int) -> Redactor:
    """The compiled redaction rules of a project (built-in defaults unless the project turned them off)."""
    import re

    ingest_settings = ProjectIngestSettings.objects.filter(project_id=project_id).first()
    rules = []
    for rule in RedactionRule.objects.filter(project_id=project_id, enabled=True).order_by("id"):
        try:
            pattern = re.compile(rule.pattern, re.I)
        except re.error as exc:
            # A rule saved before validation existed must not stop ingest for the whole project.
            logger.error("redaction rule %s of project %s has an invalid pattern: %s", rule.name, project_id, exc)
            continue
        rules.append(Rule(name=rule.name, target=rule.target, pattern=pattern, action=rule.action))
    return Redactor(
        rules=rules,
        use_defaults=ingest_settings.default_redaction if ingest_settings else True,
        hash_key=f"{settings.SECRET_KEY}:{project_id}".encode(),
    )


def project_get_or_create(*, name: str) -> tuple[Project, bool]:
    project, created = Project.objects.get_or_create(name=name)
    if created:
        ProjectIngestSettings.objects.get_or_create(project=project)
    return project, created


def project_member_add(*, project: Project, user: User) -> None:
    ProjectMembership.objects.get_or_create(project=project, user=user)


def ingest_token_create(*, project: Project, name: str = "") -> tuple[IngestToken, str]:
    """Create an ingest token; return the row and the raw token, which is shown once and never stored."""
    raw = token_generate(IngestToken.PREFIX)
    token = IngestToken.objects.create(project=project, name=name, token_hash=token_hash(raw), prefix=raw[:16])
    return token, raw


def api_token_create(*, user: User, name: str = "") -> tuple[ApiToken, str]:
    raw = token_generate(ApiToken.PREFIX)
    token = ApiToken.objects.create(user=user, name=name, token_hash=token_hash(raw), prefix=raw[:13])
    return token, raw


def token_revoke(*, prefix_or_token: str) -> int:
    """Revoke ingest or API tokens by their raw value or shown prefix; return how many were revoked."""
    now = timezone.now()
    revoked = 0
    for model in (IngestToken, ApiToken):
        by_hash = model.objects.filter(token_hash=token_hash(prefix_or_token), revoked_at=None)
        by_prefix = model.objects.filter(prefix=prefix_or_token, revoked_at=None)
        revoked += by_hash.update(revoked_at=now) + by_prefix.update(revoked_at=now)
    return revoked


@dataclass(frozen=True)
class PartitionReport:
    created: list[str]
    dropped: list[str]


def span_partitions_maintain(*, today: dt.date | None = None) -> PartitionReport:
    """Create daily partitions ahead of time and drop those past retention."""
    today = today or timezone.now().astimezone(dt.UTC).date()
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        # One maintainer at a time (beat, make run and migrations may overlap).
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADMISSION_LOCK_SPACE + 1])
        for offset in range(0, settings.TRACE_PARTITIONS_AHEAD_DAYS + 1):
            day = today + dt.timedelta(days=offset)
            if partitions.partition_create(cursor, day):
                created.append(partitions.partition_name(day))
        cutoff = today - dt.timedelta(days=settings.TRACE_RETENTION_DAYS)
        dropped = partitions.partitions_drop_before(cursor, cutoff)
        cursor.execute("DELETE FROM traces WHERE end_ns < %s", [partitions.day_start_ns(cutoff)])
    return PartitionReport(created=created, dropped=dropped)


@dataclass(frozen=True)
class IngestOutcome:
    accepted: int
    rejected: int
    duplicates: int
    message: str


_redactors: dict[int, tuple[float, Redactor]] = {}
REDACTOR_TTL_SECONDS = 30.0


def _redactor_cached(project_id: int) -> Redactor:
    import time

    now = time.monotonic()
    cached = _redactors.get(project_id)
    if cached is None or now - cached[0] > REDACTOR_TTL_SECONDS:
        cached = (now, redactor_for_project(project_id=project_id))
        _redactors[project_id] = cached
    return cached[1].fresh()


def spans_ingest(*, project_id: int, request: Any) -> IngestOutcome:
    """Validate, redact and durably store every span of an ExportTraceServiceRequest for a project."""
    from .ingest.rows import NS_PER_DAY, batch_build

    redactor = _redactor_cached(project_id)
    batch = batch_build(
        request,
        project_id=project_id,
        redactor=redactor,
        max_future_ns=settings.INGEST_MAX_CLOCK_DRIFT_DAYS * NS_PER_DAY,
    )
    result = span_batch_store(project_id=project_id, batch=batch, redaction_counts=dict(redactor.counts))
    return IngestOutcome(
        accepted=len(batch.rows), rejected=batch.rejected, duplicates=result.duplicates, message=batch.message
    )
