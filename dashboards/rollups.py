"""Pure rollup arithmetic: the delta of one ingested batch, and merging deltas into rollup rows.

A group is one (bucket start, service, operation, kind, status) with its span count, error count, latency histogram
and exemplars (the slowest spans, so charts can link to a real trace). No database access here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from traces.ingest.rows import COL_DURATION, COL_KIND, COL_NAME, COL_SERVICE, COL_START, COL_STATUS, COL_TRACE

from .histogram import LatencyHistogram

NS_PER_SECOND = 1_000_000_000
MINUTE = 60
HOUR = 3600
EXEMPLARS_KEPT = 3
COL_SPAN_ID = 3


@dataclass
class Group:
    count: int = 0
    errors: int = 0
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    exemplars: list[dict[str, Any]] = field(default_factory=list)

    def merge(self, count: int, errors: int, histogram: LatencyHistogram, exemplars: list[dict[str, Any]]) -> None:
        self.count += count
        self.errors += errors
        self.histogram.merge(histogram)
        self.exemplars = sorted([*self.exemplars, *exemplars], key=lambda e: -e["duration_ns"])[:EXEMPLARS_KEPT]


# bucket epoch seconds, service, operation (None: the service's total over all operations), kind, status
GroupKey = tuple[int, str, str | None, int, int]


def delta_payload(rows: list[list[Any]]) -> dict[str, Any]:
    """Aggregate stored span rows (traces.ingest.rows column order) per minute into a JSON-able delta.

    Runs inside every ingest transaction, so the histogram buckets are counted inline (the same bucket math as
    LatencyHistogram) rather than through one method call per span.
    """
    template = LatencyHistogram()
    inv_log_gamma = 1.0 / math.log(template.gamma)
    log, ceil = math.log, math.ceil
    # key -> [count, buckets, zero count, sum, min, max, slowest row]
    groups: dict[GroupKey, list[Any]] = {}
    trace_ids = set()
    for row in rows:
        trace_ids.add(row[COL_TRACE])
        duration = row[COL_DURATION]
        key = (
            row[COL_START] // 60_000_000_000 * MINUTE,
            row[COL_SERVICE],
            row[COL_NAME],
            row[COL_KIND],
            row[COL_STATUS],
        )
        group = groups.get(key)
        if group is None:
            group = groups[key] = [0, {}, 0, 0, duration, duration, row]
        group[0] += 1
        if duration > 0:
            index = ceil(log(duration) * inv_log_gamma)
            buckets = group[1]
            buckets[index] = buckets.get(index, 0) + 1
            group[3] += duration
        else:
            group[2] += 1
        if duration < group[4]:
            group[4] = duration
        if duration > group[5]:
            group[5] = duration
            group[6] = row
    out = []
    for key, (count, buckets, zero, total, low, high, row) in groups.items():
        histogram = LatencyHistogram(template.accuracy)
        histogram.buckets, histogram.zero, histogram.sum, histogram.min, histogram.max = buckets, zero, total, low, high
        exemplar = {
            "trace_id": row[COL_TRACE],
            "span_id": (row[COL_SPAN_ID] & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big").hex(),
            "duration_ns": row[COL_DURATION],
            "start_ns": row[COL_START],
            "error": row[COL_STATUS] == 2,
        }
        out.append([*key, count, count if key[4] == 2 else 0, histogram.to_json(), [exemplar]])
    # The traces the batch touched: compaction marks them for edge pairing (dashboards.edge_rollups).
    return {"v": 1, "groups": out, "traces": sorted(trace_ids)}


def deltas_merge(payloads: list[dict[str, Any]], *, resolution: int) -> dict[GroupKey, Group]:
    """Merge delta payloads into groups at a resolution of MINUTE or HOUR."""
    merged: dict[GroupKey, Group] = {}
    for payload in payloads:
        for minute, service, operation, kind, status, count, errors, histogram, exemplars in payload["groups"]:
            bucket = minute // resolution * resolution
            parsed = LatencyHistogram.from_json(histogram)
            for key in ((bucket, service, operation, kind, status), (bucket, service, None, kind, status)):
                group = merged.get(key)
                if group is None:
                    group = merged[key] = Group()
                group.merge(count, errors, parsed, exemplars)
    return merged
