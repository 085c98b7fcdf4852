"""Reads for the service map: nodes and edges with RED figures, a service's neighbours, one edge's example calls.

Everything comes from the rollup tables (EdgeRollup for calls, SpanRollup for a service's own requests); raw spans
are never scanned for a time range. Histogram columns are read as text and parsed with orjson: for a 24-hour map
this is the bulk of the work.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import connection

from .edge_rollups import CONN_UNPAIRED
from .edges import CLIENTS_NODE, NODE_CLIENTS, NODE_SERVICE, NODE_UNKNOWN
from .histogram import LatencyHistogram
from .map_layout import map_layout
from .rollup_selectors import ENTRY_KINDS, HOURLY_ABOVE_NS, rollup_lag_seconds
from .rollups import HOUR, MINUTE

MIN_CALLS_TO_COMPARE = 5
SLOWER_RATIO = 1.25
SLOWER_MIN_NS = 1_000_000
MORE_ERRORS_POINTS = 1.0
MORE_ERRORS_RATIO = 1.5
EXAMPLES_SLOWEST = 10
EXAMPLES_ERRORS = 5
EXAMPLES_RECENT = 5

_EDGE_ROWS_SQL = """
SELECT extract(epoch FROM bucket)::bigint, caller, callee, callee_kind, connection, count, error_count,
       histogram::text, server_histogram::text
FROM dashboards_edgerollup
WHERE project_id = ANY(%s) AND resolution = %s AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s)
  AND count <> 0
"""
_SERVICE_ROWS_SQL = """
SELECT extract(epoch FROM bucket)::bigint, service_name, kind, count, error_count, histogram::text
FROM dashboards_spanrollup
WHERE project_id = ANY(%s) AND resolution = %s AND all_operations AND bucket >= to_timestamp(%s)
  AND bucket < to_timestamp(%s)
"""


@dataclass(frozen=True)
class Window:
    start_ns: int
    end_ns: int
    resolution: int
    first_bucket: int  # epoch seconds
    end_bucket: int  # exclusive, epoch seconds

    @classmethod
    def of(cls, start_ns: int, end_ns: int) -> Window:
        resolution = MINUTE if end_ns - start_ns <= HOURLY_ABOVE_NS else HOUR
        first = start_ns // 10**9 // resolution * resolution
        return cls(start_ns, end_ns, resolution, first, -(-end_ns // 10**9))

    def minutes(self, start_s: int | None = None, end_s: int | None = None) -> float:
        start = self.start_ns / 1e9 if start_s is None else start_s
        end = self.end_ns / 1e9 if end_s is None else end_s
        return max(end - start, 1.0) / 60

    def as_dict(self) -> dict[str, Any]:
        return {"start_ns": str(self.start_ns), "end_ns": str(self.end_ns), "resolution_seconds": self.resolution}


@dataclass
class Tally:
    """Calls (or requests) with errors and latency, mergeable."""

    calls: int = 0
    errors: int = 0
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    server: LatencyHistogram = field(default_factory=LatencyHistogram)

    def add(self, calls: int, errors: int, histogram: str, server: str | None = None) -> None:
        self.calls += calls
        self.errors += errors
        self.histogram.merge_json(orjson.loads(histogram))
        if server is not None:
            self.server.merge_json(orjson.loads(server))

    def merge(self, other: Tally) -> None:
        self.calls += other.calls
        self.errors += other.errors
        self.histogram.merge(other.histogram)
        self.server.merge(other.server)

    def figures(self, minutes: float) -> dict[str, Any]:
        p95 = self.histogram.quantile(0.95)
        return {
            "rate_per_minute": round(self.calls / minutes, 3),
            "error_percent": round(100 * self.errors / self.calls, 2) if self.calls else 0.0,
            "p95_ns": None if p95 is None else round(p95),
        }


@dataclass
class Sides:
    """A tally for the whole window, and for before / after the comparison time when there is one. With a
    comparison, rows go to one side only and the whole is their sum (each row is parsed once)."""

    whole: Tally = field(default_factory=Tally)
    before: Tally = field(default_factory=Tally)
    after: Tally = field(default_factory=Tally)

    def add(self, split: int | None, bucket: int, calls: int, errors: int, histogram: str, server: str | None) -> None:
        if split is None:
            self.whole.add(calls, errors, histogram, server)
        else:
            (self.before if bucket < split else self.after).add(calls, errors, histogram, server)

    def finish(self, split: int | None) -> None:
        if split is not None:
            self.whole = Tally()
            self.whole.merge(self.before)
            self.whole.merge(self.after)


def _change(sides: Sides, *, before_minutes: float, after_minutes: float) -> dict[str, Any]:
    before, after = sides.before.figures(before_minutes), sides.after.figures(after_minutes)
    enough = sides.before.calls >= MIN_CALLS_TO_COMPARE and sides.after.calls >= MIN_CALLS_TO_COMPARE
    slower = bool(
        enough
        and before["p95_ns"] is not None
        and after["p95_ns"] is not None
        and after["p95_ns"] >= before["p95_ns"] * SLOWER_RATIO
        and after["p95_ns"] - before["p95_ns"] >= SLOWER_MIN_NS
    )
    more_errors = bool(
        sides.after.calls >= MIN_CALLS_TO_COMPARE
        and after["error_percent"] - before["error_percent"] >= MORE_ERRORS_POINTS
        and after["error_percent"] >= before["error_percent"] * MORE_ERRORS_RATIO
    )
    status = "new" if not sides.before.calls and sides.after.calls else "gone" if not sides.after.calls else ""
    return {"before": before, "after": after, "slower": slower, "more_errors": more_errors, "status": status}


def map_lag_seconds(*, project_ids: list[int]) -> float:
    """How far the map trails ingest: the older of the oldest batch not yet compacted and the oldest trace still
    waiting to be paired (its last batch's ingest time)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(extract(epoch FROM now() - min(last_seen)), 0) FROM dashboards_traceedgestate "
            "WHERE pending AND project_id = ANY(%s)",
            [project_ids],
        )
        waiting = float(cursor.fetchone()[0])
    return round(max(rollup_lag_seconds(project_ids=project_ids), waiting), 1)


def _edge_rows(project_ids: list[int], window: Window) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(_EDGE_ROWS_SQL, [project_ids, window.resolution, window.first_bucket, window.end_bucket])
        return cursor.fetchall()


def _service_rows(project_ids: list[int], window: Window) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(_SERVICE_ROWS_SQL, [project_ids, window.resolution, window.first_bucket, window.end_bucket])
        return cursor.fetchall()


def _neighbourhood(adjacent: dict[str, set[str]], service: str, hops: int) -> set[str]:
    seen = {service}
    queue = deque([(service, 0)])
    while queue:
        node, distance = queue.popleft()
        if distance == hops:
            continue
        for other in adjacent.get(node, ()):
            if other not in seen:
                seen.add(other)
                queue.append((other, distance + 1))
    return seen


def service_map(
    *,
    project_ids: list[int],
    start_ns: int,
    end_ns: int,
    service: str | None = None,
    hops: int = 1,
    compare_at_ns: int | None = None,
) -> dict[str, Any]:
    """The dependency graph of a window: nodes and edges with calls/min, error % and p95, laid out in layers.

    `service` keeps only nodes within `hops` calls of it (either direction). `compare_at_ns` splits the window at
    that bucket and flags nodes and edges that got slower or more error-prone after it.
    """
    window = Window.of(start_ns, end_ns)
    split = None if compare_at_ns is None else compare_at_ns // 10**9 // window.resolution * window.resolution

    edges: dict[tuple[str, str], Sides] = {}
    edge_kinds: dict[str, str] = {}
    connections: dict[tuple[str, str], Counter[str]] = {}
    unpaired: Counter[str] = Counter()
    for bucket, caller, callee, kind, conn, count, errors, histogram, server in _edge_rows(project_ids, window):
        if conn == CONN_UNPAIRED:
            unpaired[callee] += count
            continue
        if callee_kind_wins(edge_kinds.get(callee), kind):
            edge_kinds[callee] = kind
        key = (caller, callee)
        sides = edges.get(key)
        if sides is None:
            sides = edges[key] = Sides()
            connections[key] = Counter()
        connections[key][conn] += count
        sides.add(split, bucket, count, errors, histogram, server)
        if kind == NODE_UNKNOWN:
            unpaired[caller] += count

    services: dict[str, Sides] = {}
    entry_seen: set[str] = set()
    service_rows = _service_rows(project_ids, window)
    for _bucket, name, kind, _count, _errors, _histogram in service_rows:
        if kind in ENTRY_KINDS:
            entry_seen.add(name)
    for bucket, name, kind, count, errors, histogram in service_rows:
        # Requests are a service's SERVER/CONSUMER spans; one without any is measured on all its spans.
        if name in entry_seen and kind not in ENTRY_KINDS:
            continue
        services.setdefault(name, Sides()).add(split, bucket, count, errors, histogram, None)
    for sides in (*edges.values(), *services.values()):
        sides.finish(split)

    # Virtual nodes (and "clients") are measured by the calls that touch them.
    nodes: dict[str, tuple[str, Sides]] = {name: (NODE_SERVICE, sides) for name, sides in services.items()}
    for (caller, callee), sides in edges.items():
        if caller == CLIENTS_NODE and caller not in services:
            entry = nodes.setdefault(CLIENTS_NODE, (NODE_CLIENTS, Sides()))[1]
            for mine, theirs in ((entry.whole, sides.whole), (entry.before, sides.before), (entry.after, sides.after)):
                mine.merge(theirs)
        if callee not in services:
            kind = edge_kinds.get(callee, NODE_SERVICE)
            target = nodes.setdefault(callee, (kind, Sides()))[1]
            for mine, theirs in (
                (target.whole, sides.whole),
                (target.before, sides.before),
                (target.after, sides.after),
            ):
                mine.merge(theirs)
        if caller not in nodes:
            nodes[caller] = (NODE_SERVICE, Sides())

    focus = None
    if service:
        adjacent: dict[str, set[str]] = {}
        for caller, callee in edges:
            adjacent.setdefault(caller, set()).add(callee)
            adjacent.setdefault(callee, set()).add(caller)
        keep = _neighbourhood(adjacent, service, hops) if service in nodes else set()
        nodes = {name: value for name, value in nodes.items() if name in keep}
        edges = {key: value for key, value in edges.items() if key[0] in keep and key[1] in keep}
        focus = {"service": service, "hops": hops}

    layout = map_layout(
        list(nodes), list(edges), first=CLIENTS_NODE, weights={key: sides.whole.calls for key, sides in edges.items()}
    )
    minutes = window.minutes()
    compare = None
    before_minutes = after_minutes = 1.0
    if split is not None and compare_at_ns is not None:
        before_minutes = window.minutes(end_s=split)
        after_minutes = window.minutes(start_s=split)
        compare = {
            "at_ns": str(compare_at_ns),
            "before": {"start_ns": str(start_ns), "end_ns": str(split * 10**9)},
            "after": {"start_ns": str(split * 10**9), "end_ns": str(end_ns)},
        }

    def change(sides: Sides) -> dict[str, Any] | None:
        if split is None:
            return None
        return _change(sides, before_minutes=before_minutes, after_minutes=after_minutes)

    node_docs = []
    for name, (kind, sides) in nodes.items():
        tally = sides.whole
        node_docs.append(
            {
                "id": name,
                "name": name,
                "kind": kind,
                "layer": layout.layer[name],
                "order": layout.order[name],
                "requests": tally.calls,
                "errors": tally.errors,
                **tally.figures(minutes),
                "unpaired": unpaired.get(name, 0),
                "change": change(sides),
            }
        )
    node_docs.sort(key=lambda node: (node["layer"], node["order"]))
    edge_docs = []
    for (caller, callee), sides in sorted(edges.items()):
        tally = sides.whole
        p50, p95, p99 = tally.histogram.quantiles((0.5, 0.95, 0.99))
        server_p95 = tally.server.quantile(0.95)
        edge_docs.append(
            {
                "id": f"{caller}->{callee}",
                "source": caller,
                "target": callee,
                "connection": connections[(caller, callee)].most_common(1)[0][0],
                "calls": tally.calls,
                "calls_per_minute": round(tally.calls / minutes, 3),
                "errors": tally.errors,
                "error_percent": round(100 * tally.errors / tally.calls, 2) if tally.calls else 0.0,
                "p50_ns": _int(p50),
                "p95_ns": _int(p95),
                "p99_ns": _int(p99),
                "server_p95_ns": _int(server_p95),
                "back_edge": (caller, callee) in layout.back_edges,
                "change": change(sides),
            }
        )
    return {
        "window": window.as_dict(),
        "lag_seconds": map_lag_seconds(project_ids=project_ids),
        "focus": focus,
        "compare": compare,
        "nodes": node_docs,
        "edges": edge_docs,
    }


def callee_kind_wins(current: str | None, candidate: str) -> bool:
    """An instrumented service wins over a virtual guess of the same name; otherwise the first kind seen stays."""
    return current is None or (candidate == NODE_SERVICE and current != NODE_SERVICE)


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


def service_neighbours(*, project_ids: list[int], service: str, start_ns: int, end_ns: int) -> dict[str, Any]:
    """Who calls `service` (upstream) and what it calls (downstream) in a window, busiest first."""
    window = Window.of(start_ns, end_ns)
    minutes = window.minutes()
    found: dict[tuple[str, str, str], tuple[Tally, Counter[str]]] = {}
    for _bucket, caller, callee, kind, conn, count, errors, histogram, _server in _edge_rows(project_ids, window):
        if conn == CONN_UNPAIRED or service not in (caller, callee):
            continue
        direction, other = ("upstream", caller) if callee == service else ("downstream", callee)
        other_kind = NODE_CLIENTS if other == CLIENTS_NODE else kind if direction == "downstream" else NODE_SERVICE
        tally, conns = found.setdefault((direction, other, other_kind), (Tally(), Counter()))
        tally.add(count, errors, histogram)
        conns[conn] += count
    out: dict[str, Any] = {"upstream": [], "downstream": []}
    for (direction, other, other_kind), (tally, conns) in found.items():
        if tally.calls <= 0:
            continue
        out[direction].append(
            {
                "name": other,
                "kind": other_kind,
                "calls": tally.calls,
                "calls_per_minute": round(tally.calls / minutes, 3),
                "errors": tally.errors,
                "error_percent": round(100 * tally.errors / tally.calls, 2),
                "p95_ns": _int(tally.histogram.quantile(0.95)),
                "connection": conns.most_common(1)[0][0],
            }
        )
    for items in out.values():
        items.sort(key=lambda item: (-item["calls"], item["name"]))
    return out


def service_map_edge(
    *, project_ids: list[int], source: str, target: str, start_ns: int, end_ns: int
) -> dict[str, Any] | None:
    """One edge's figures and example calls (slowest, failed and most recent first); None without calls."""
    window = Window.of(start_ns, end_ns)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count, error_count, histogram::text, server_histogram::text, exemplars::text
            FROM dashboards_edgerollup
            WHERE project_id = ANY(%s) AND resolution = %s AND bucket >= to_timestamp(%s)
              AND bucket < to_timestamp(%s) AND caller = %s AND callee = %s AND connection <> %s AND count <> 0
            """,
            [project_ids, window.resolution, window.first_bucket, window.end_bucket, source, target, CONN_UNPAIRED],
        )
        rows = cursor.fetchall()
    tally = Tally()
    candidates: list[dict[str, Any]] = []
    for count, errors, histogram, server, exemplars in rows:
        tally.add(count, errors, histogram, server)
        candidates += orjson.loads(exemplars)
    if tally.calls <= 0:
        return None
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in candidates:
        unique.setdefault((item["trace_id"], item["caller_span_id"], item["callee_span_id"]), item)
    slowest = sorted(unique.values(), key=lambda e: -e["duration_ns"])
    chosen = slowest[:EXAMPLES_SLOWEST]
    chosen += [e for e in slowest if e["error"] and e not in chosen][:EXAMPLES_ERRORS]
    chosen += [e for e in sorted(slowest, key=lambda e: -e["start_ns"]) if e not in chosen][:EXAMPLES_RECENT]
    minutes = window.minutes()
    p50, p95, p99 = tally.histogram.quantiles((0.5, 0.95, 0.99))
    return {
        "source": source,
        "target": target,
        "window": window.as_dict(),
        "calls": tally.calls,
        "calls_per_minute": round(tally.calls / minutes, 3),
        "errors": tally.errors,
        "error_percent": round(100 * tally.errors / tally.calls, 2),
        "p50_ns": _int(p50),
        "p95_ns": _int(p95),
        "p99_ns": _int(p99),
        "server_p95_ns": _int(tally.server.quantile(0.95)),
        "examples": [{**item, "start_ns": str(item["start_ns"])} for item in chosen],
    }
