"""Bytes stored per span: heap, TOAST and every index of `spans` summed over its partitions, plus the side tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from .common import Report, human_bytes

_PARTITIONS = "SELECT inhrelid FROM pg_inherits WHERE inhparent = 'spans'::regclass"

# Partition indexes are attached to the parent's indexes: group their sizes by the parent index name.
_INDEX_SIZES = f"""
SELECT parent.relname, sum(pg_relation_size(child.oid))::bigint
FROM pg_inherits i
JOIN pg_class child ON child.oid = i.inhrelid
JOIN pg_class parent ON parent.oid = i.inhparent
JOIN pg_index x ON x.indexrelid = child.oid
WHERE parent.relkind = 'I' AND x.indrelid IN ({_PARTITIONS})
GROUP BY parent.relname ORDER BY 2 DESC
"""

_HEAP_SIZES = f"""
SELECT coalesce(sum(pg_relation_size(c.oid)), 0)::bigint,
       coalesce(sum(CASE WHEN c.reltoastrelid <> 0 THEN pg_total_relation_size(c.reltoastrelid) ELSE 0 END), 0)::bigint,
       coalesce(sum(pg_relation_size(c.oid, 'fsm') + pg_relation_size(c.oid, 'vm')), 0)::bigint
FROM pg_class c WHERE c.oid IN ({_PARTITIONS})
"""


@dataclass
class Storage:
    spans: int
    traces: int
    heap: int
    toast: int
    maps: int
    indexes: list[tuple[str, int]]
    traces_bytes: int
    resources_bytes: int
    operations_bytes: int

    @property
    def total(self) -> int:
        return (
            self.heap
            + self.toast
            + self.maps
            + sum(size for _name, size in self.indexes)
            + self.traces_bytes
            + self.resources_bytes
            + self.operations_bytes
        )


def storage_measure(conn: psycopg.Connection[Any]) -> Storage:
    # Fresh GIN entries may sit in the pending list; counting them as they are is what a live store looks like.
    spans = conn.execute("SELECT count(*) FROM spans").fetchone()
    traces = conn.execute("SELECT count(*) FROM traces").fetchone()
    heap = conn.execute(_HEAP_SIZES).fetchone()
    side = conn.execute(
        "SELECT pg_total_relation_size('traces'), pg_total_relation_size('traces_resource'), "
        "pg_total_relation_size('traces_operation')"
    ).fetchone()
    assert spans and traces and heap and side
    indexes = [(str(name), int(size)) for name, size in conn.execute(_INDEX_SIZES).fetchall()]
    return Storage(
        spans=int(spans[0]),
        traces=int(traces[0]),
        heap=int(heap[0]),
        toast=int(heap[1]),
        maps=int(heap[2]),
        indexes=indexes,
        traces_bytes=int(side[0]),
        resources_bytes=int(side[1]),
        operations_bytes=int(side[2]),
    )


def storage_report(report: Report, section: str, storage: Storage, *, command: str, what: str) -> None:
    n = max(storage.spans, 1)

    def per_span(size: int) -> str:
        return f"{size / n:,.1f} B/span"

    report.add(
        section,
        f"bytes stored per span, total ({what})",
        per_span(storage.total),
        command=command,
        note=f"{human_bytes(storage.total)} for {storage.spans:,} spans / {storage.traces:,} traces",
    )
    report.add(section, "  spans heap", per_span(storage.heap), command=command, note=human_bytes(storage.heap))
    report.add(section, "  spans TOAST", per_span(storage.toast), command=command, note=human_bytes(storage.toast))
    report.add(section, "  spans FSM + VM", per_span(storage.maps), command=command, note=human_bytes(storage.maps))
    for name, size in storage.indexes:
        report.add(section, f"  index {name}", per_span(size), command=command, note=human_bytes(size))
    report.add(
        section,
        "  traces summaries (+ indexes)",
        per_span(storage.traces_bytes),
        command=command,
        note=f"{human_bytes(storage.traces_bytes)}, {storage.traces_bytes / max(storage.traces, 1):,.0f} B/trace",
    )
    report.add(
        section,
        "  resources + operations",
        per_span(storage.resources_bytes + storage.operations_bytes),
        command=command,
        note=human_bytes(storage.resources_bytes + storage.operations_bytes),
    )
