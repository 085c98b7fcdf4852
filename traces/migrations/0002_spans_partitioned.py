"""The partitioned `spans` table. Django cannot declare partitions, so this is raw SQL; the `Span` model maps it.

Indexes (see ../shared/anchors/ingest-storage.md §7.2 for the measurements behind them):
- spans_identity: unique (trace_id, span_id, kind, start_ns, project_id). Makes re-sent spans idempotent and
  serves trace-by-id. `kind` is part of it because Zipkin's shared client/server spans reuse one span id.
- spans_search_name / spans_search_service: search by service (and operation) newest first, with duration and
  trace id included so duration filters are index-only.
- spans_errors: partial index for error searches. spans_start_brin: time-only and attribute + time scans.
- spans_attributes: GIN jsonb_path_ops for attribute equality (@>).
"""

import datetime as dt

from django.db import migrations

from traces import partitions

CREATE = """
CREATE TABLE spans (
    start_ns                 bigint   NOT NULL,
    trace_id                 uuid     NOT NULL,
    span_id                  bigint   NOT NULL,
    parent_span_id           bigint,
    duration_ns              bigint   NOT NULL,
    resource_id              bigint   NOT NULL,
    project_id               integer  NOT NULL,
    flags                    integer  NOT NULL DEFAULT 0,
    http_status_code         integer,
    dropped_attributes_count integer  NOT NULL DEFAULT 0,
    dropped_events_count     integer  NOT NULL DEFAULT 0,
    dropped_links_count      integer  NOT NULL DEFAULT 0,
    kind                     smallint NOT NULL,
    status_code              smallint NOT NULL,
    service_name             text     NOT NULL,
    name                     text     NOT NULL,
    status_message           text     NOT NULL DEFAULT '',
    scope_name               text     NOT NULL DEFAULT '',
    scope_version            text     NOT NULL DEFAULT '',
    trace_state              text     NOT NULL DEFAULT '',
    http_method              text,
    http_route               text,
    db_system                text,
    db_name                  text,
    peer_service             text,
    messaging_system         text,
    messaging_destination    text,
    server_address           text,
    attributes               jsonb    NOT NULL DEFAULT '{}',
    events                   jsonb,
    links                    jsonb
) PARTITION BY RANGE (start_ns);
CREATE UNIQUE INDEX spans_identity ON spans (trace_id, span_id, kind, start_ns, project_id);
CREATE INDEX spans_search_name ON spans (project_id, service_name, name, start_ns DESC) INCLUDE (duration_ns, trace_id);
CREATE INDEX spans_search_service ON spans (project_id, service_name, start_ns DESC) INCLUDE (duration_ns, trace_id);
CREATE INDEX spans_errors ON spans (project_id, service_name, start_ns DESC) WHERE status_code = 2;
CREATE INDEX spans_start_brin ON spans USING brin (start_ns) WITH (pages_per_range = 32);
CREATE INDEX spans_attributes ON spans USING gin (attributes jsonb_path_ops);
CREATE TABLE spans_default PARTITION OF spans DEFAULT;
"""


def create_partitions(apps, schema_editor):  # type: ignore[no-untyped-def]
    today = dt.datetime.now(dt.UTC).date()
    with schema_editor.connection.cursor() as cursor:
        for offset in range(-1, 4):
            partitions.partition_create(cursor, today + dt.timedelta(days=offset))


class Migration(migrations.Migration):
    dependencies = [("traces", "0001_initial")]

    operations = [
        migrations.RunSQL(CREATE, reverse_sql="DROP TABLE spans CASCADE;"),
        migrations.RunPython(create_partitions, migrations.RunPython.noop),
        migrations.RunSQL("ALTER TABLE traces SET (fillfactor = 80);", migrations.RunSQL.noop),
    ]
