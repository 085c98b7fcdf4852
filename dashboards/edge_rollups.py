"""Pure arithmetic of edge rollups: what one trace contributes to the per-minute edge aggregates, and the change
when a trace is paired again after more of its spans arrived. No database access here.

Why per trace: a call's two halves (client span in one service, server span in another) are exported by different
processes and arrive in different batches, so edges cannot be counted per ingest batch. A trace is paired once it
has been idle for a while (dashboards.services.edges_rollup). Spans that arrive later make the trace pending again;
it is then paired anew and only the difference to what it contributed before is applied, so a call that first
looked like a virtual node and later found its server is counted once, on the right edge. That keeps edge rollups
exact for everything ingested, like the span rollups.

A contribution is a multiset of call instances, each `(minute, caller, callee, callee_kind, connection, error,
duration_ns, server_duration_ns)` (server -1 when unknown); unpaired callees are instances with caller "" and
connection "unpaired".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from .edges import NODE_SERVICE, TraceEdges
from .histogram import LatencyHistogram

CONN_UNPAIRED = "unpaired"
EXEMPLARS_SLOWEST = 3
EXEMPLARS_ERRORS = 2
_NS_PER_MINUTE = 60_000_000_000

Instance = tuple[int, str, str, str, str, int, int, int]


def _span_hex(span_id: int | None) -> str | None:
    return None if span_id is None else (span_id & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big").hex()


def contribution_of(found: TraceEdges) -> Counter[Instance]:
    """The call instances of one paired trace."""
    instances: Counter[Instance] = Counter()
    for edge in found.edges:
        instances[
            (
                edge.start_ns // _NS_PER_MINUTE * 60,
                edge.caller,
                edge.callee,
                edge.callee_kind,
                edge.connection,
                1 if edge.error else 0,
                edge.duration_ns,
                -1 if edge.server_duration_ns is None else edge.server_duration_ns,
            )
        ] += 1
    for service, start in found.unpaired_callees:
        instances[(start // _NS_PER_MINUTE * 60, "", service, NODE_SERVICE, CONN_UNPAIRED, 0, 0, -1)] += 1
    return instances


def contribution_dumps(instances: Counter[Instance]) -> str:
    return orjson.dumps([[*instance, n] for instance, n in instances.items()]).decode()


def contribution_loads(text: str) -> Counter[Instance]:
    """Inverse of contribution_dumps; "" (never paired) is empty."""
    instances: Counter[Instance] = Counter()
    if text:
        for *fields, n in orjson.loads(text):
            instances[tuple(fields)] += n  # type: ignore[index]
    return instances


def exemplar_candidates(found: TraceEdges, *, trace_id: str) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(minute edge key, candidate) per call of a trace; candidates are cheap tuples, see exemplars_pick."""
    return [
        (
            (edge.start_ns // _NS_PER_MINUTE * 60, edge.caller, edge.callee, edge.callee_kind, edge.connection),
            (edge.duration_ns, edge.error, trace_id, edge),
        )
        for edge in found.edges
    ]


def exemplars_pick(candidates: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The slowest few calls plus a couple of failed ones, as exemplar documents."""
    ranked = sorted(candidates, key=lambda c: -c[0])
    chosen = ranked[:EXEMPLARS_SLOWEST]
    chosen += [c for c in ranked[EXEMPLARS_SLOWEST:] if c[1]][:EXEMPLARS_ERRORS]
    return [
        {
            "trace_id": trace_id,
            "caller_span_id": _span_hex(edge.caller_span_id),
            "callee_span_id": _span_hex(edge.callee_span_id),
            "duration_ns": duration,
            "start_ns": edge.start_ns,
            "error": error,
        }
        for duration, error, trace_id, edge in chosen
    ]


def exemplars_keep(exemplars: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The slowest few calls plus a couple of failed ones, each call once."""
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for item in sorted(exemplars, key=lambda e: -e["duration_ns"]):
        identity = (item["trace_id"], item["caller_span_id"], item["callee_span_id"])
        if identity not in seen:
            seen.add(identity)
            unique.append(item)
    kept = unique[:EXEMPLARS_SLOWEST]
    kept += [item for item in unique[EXEMPLARS_SLOWEST:] if item["error"]][:EXEMPLARS_ERRORS]
    return kept


@dataclass
class EdgeGroup:
    """Calls of one edge in one bucket: counts, caller-observed and callee-observed latency, example calls."""

    count: int = 0
    errors: int = 0
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    server_histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    exemplars: list[dict[str, Any]] = field(default_factory=list)
    changed: bool = False

    def apply_many(self, changes: list[tuple[Instance, int]]) -> None:
        """Add (n > 0) or take back (n < 0) n calls like each instance, in one pass per histogram."""
        count = errors = 0
        durations: list[tuple[int, int]] = []
        servers: list[tuple[int, int]] = []
        for instance, n in changes:
            count += n
            errors += n * instance[5]
            durations.append((instance[6], n))
            if instance[7] >= 0:
                servers.append((instance[7], n))
        self.count += count
        self.errors += errors
        self.histogram.apply_changes(durations)
        self.server_histogram.apply_changes(servers)
        self.changed = True


def contribution_changes(old: Counter[Instance], new: Counter[Instance]) -> list[tuple[Instance, int]]:
    """What to apply to go from `old` to `new`: (instance, +n) for calls to add, (instance, -n) to take back."""
    changes = [(instance, n) for instance, n in (new - old).items()]
    changes += [(instance, -n) for instance, n in (old - new).items()]
    return changes
