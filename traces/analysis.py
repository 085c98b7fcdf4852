"""Trace analysis: tree with orphans, clock-skew adjustment, critical path, self time, statistics, repeated
siblings (N+1) and the structural diff of two traces. Pure functions over `SpanLite` lists; no ORM.

Algorithms follow the reference implementations described in ../shared/anchors/trace-ui.md:
- clock skew: Jaeger's adjuster (host key from resource; a child on another host that does not fit in its parent
  is centred in it, and the shift carries to its same-host descendants);
- critical path: Jaeger's last-finishing-child walk, with CONSUMER children of PRODUCER parents treated as
  non-blocking and children clipped to their parent. Iterative, so 100,000-span traces do not hit recursion limits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

KIND_PRODUCER = 4
KIND_CONSUMER = 5
STATUS_ERROR = 2
REPEATED_MIN = 3  # siblings of one (service, operation) listed in the summary
N_PLUS_ONE_MIN = 10  # ... and flagged as a likely N+1 from this many on


@dataclass(slots=True)
class SpanLite:
    span_id: int
    parent_id: int | None
    start: int  # ns since epoch
    duration: int  # ns
    kind: int
    service: str
    name: str
    status: int
    host: str = ""

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass
class Tree:
    spans: dict[int, SpanLite]
    children: dict[int, list[int]]  # parent id -> child ids, ordered by start
    roots: list[int]  # true roots first, then orphans, each ordered by start
    orphans: set[int]  # spans whose parent is not in the trace
    depth: dict[int, int] = field(default_factory=dict)


def tree_build(spans: list[SpanLite]) -> Tree:
    """Index spans into a tree. Duplicate span ids keep the first; missing parents make orphan roots."""
    by_id: dict[int, SpanLite] = {}
    for span in spans:
        by_id.setdefault(span.span_id, span)
    children: dict[int, list[int]] = defaultdict(list)
    roots: list[int] = []
    orphans: set[int] = set()
    for span in by_id.values():
        parent = span.parent_id
        if parent is None or parent == span.span_id:
            roots.append(span.span_id)
        elif parent in by_id:
            children[parent].append(span.span_id)
        else:
            orphans.add(span.span_id)
    for kids in children.values():
        kids.sort(key=lambda sid: (by_id[sid].start, sid))
    roots.sort(key=lambda sid: (by_id[sid].start, sid))
    ordered_orphans = sorted(orphans, key=lambda sid: (by_id[sid].start, sid))
    tree = Tree(spans=by_id, children=dict(children), roots=roots + ordered_orphans, orphans=orphans)
    for root in tree.roots:
        tree.depth[root] = 0
        stack = [root]
        while stack:
            current = stack.pop()
            for child in tree.children.get(current, ()):
                if child not in tree.depth:  # guards against parent cycles in hostile input
                    tree.depth[child] = tree.depth[current] + 1
                    stack.append(child)
    return tree


def preorder(tree: Tree) -> list[int]:
    """Span ids in waterfall order: depth-first, children by start time."""
    out: list[int] = []
    seen: set[int] = set()
    for root in tree.roots:
        stack = [root]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            out.append(current)
            stack.extend(reversed(tree.children.get(current, ())))
    return out


def _skew_for(child: SpanLite, parent_start: int, parent_duration: int) -> int:
    if child.duration > parent_duration:
        # Longer than its parent: an async call. Only make sure it does not start before the parent.
        return parent_start - child.start if child.start < parent_start else 0
    if child.start >= parent_start and child.end <= parent_start + parent_duration:
        return 0
    # Assume the network latency is split equally between request and response.
    latency = (parent_duration - child.duration) // 2
    return parent_start + latency - child.start


def clock_skew(tree: Tree, *, max_adjust_ns: int = 3_600 * 10**9) -> dict[int, int]:
    """Per-span time shift (ns) that puts children from other hosts inside their parents."""
    deltas: dict[int, int] = {}
    for root in tree.roots:
        if root in tree.orphans:
            continue  # no parent to align with (Jaeger warns and skips likewise)
        stack: list[tuple[int, str, int]] = [(root, tree.spans[root].host, 0)]
        while stack:
            span_id, skew_host, skew = stack.pop()
            span = tree.spans[span_id]
            if skew:
                deltas[span_id] = skew
            parent_start = span.start + skew
            for child_id in tree.children.get(span_id, ()):
                child = tree.spans[child_id]
                child_host, child_skew = skew_host, skew
                if child.host != skew_host or not child.host:
                    child_host = child.host
                    child_skew = _skew_for(child, parent_start, span.duration)
                    if abs(child_skew) > max_adjust_ns:
                        child_skew = 0
                stack.append((child_id, child_host, child_skew))
    return deltas


def self_times(tree: Tree, *, deltas: dict[int, int] | None = None) -> dict[int, int]:
    """Each span's duration minus the union of its children's intervals clipped to it."""
    deltas = deltas or {}
    out: dict[int, int] = {}
    for span_id, span in tree.spans.items():
        start = span.start + deltas.get(span_id, 0)
        end = start + span.duration
        covered = 0
        cursor = start
        intervals = sorted(
            (tree.spans[c].start + deltas.get(c, 0), tree.spans[c].end + deltas.get(c, 0))
            for c in tree.children.get(span_id, ())
        )
        for child_start, child_end in intervals:
            child_start, child_end = max(child_start, cursor), min(child_end, end)
            if child_end > child_start:
                covered += child_end - child_start
                cursor = child_end
        out[span_id] = span.duration - covered
    return out


def critical_path(tree: Tree, *, deltas: dict[int, int] | None = None) -> list[tuple[int, int, int]]:
    """Critical path sections (span id, start ns, end ns), for every root, following Jaeger's algorithm."""
    deltas = deltas or {}

    def bounds(span_id: int) -> tuple[int, int]:
        span = tree.spans[span_id]
        start = span.start + deltas.get(span_id, 0)
        return start, start + span.duration

    sections: list[tuple[int, int, int]] = []
    for root in tree.roots:
        # Sanitised children (clipped to the parent, non-blocking ones dropped), sorted by end descending.
        clipped: dict[int, tuple[int, int]] = {root: bounds(root)}
        blocking: dict[int, list[int]] = {}
        parent_of: dict[int, int] = {}
        stack = [root]
        while stack:
            current = stack.pop()
            current_start, current_end = clipped[current]
            kept = []
            for child_id in tree.children.get(current, ()):
                child = tree.spans[child_id]
                if child.kind == KIND_CONSUMER and tree.spans[current].kind == KIND_PRODUCER:
                    continue
                child_start, child_end = bounds(child_id)
                if child_end < current_start or child_start > current_end:
                    continue  # entirely outside its parent: not on this path, nor its descendants
                clipped[child_id] = (max(child_start, current_start), min(child_end, current_end))
                parent_of[child_id] = current
                kept.append(child_id)
                stack.append(child_id)
            kept.sort(key=lambda cid: clipped[cid][1], reverse=True)
            blocking[current] = kept
        pointer: dict[int, int] = defaultdict(int)
        span_id = root
        returning: int | None = None
        while True:
            start, end = clipped[span_id]
            section_end = returning if returning is not None else end
            kids = blocking.get(span_id, [])
            index = pointer[span_id]
            if returning is not None:
                # Returning times only fall for a given parent, so the scan position never needs to go back.
                while index < len(kids) and clipped[kids[index]][1] >= returning:
                    index += 1
            pointer[span_id] = index + 1
            if index < len(kids):
                child_id = kids[index]
                child_end = clipped[child_id][1]
                if child_end != section_end:
                    sections.append((span_id, child_end, section_end))
                span_id, returning = child_id, None
                continue
            if start != section_end:
                sections.append((span_id, start, section_end))
            parent = parent_of.get(span_id)
            if parent is None:
                break
            span_id, returning = parent, start
    return sections


@dataclass
class OperationStats:
    service: str
    operation: str
    count: int = 0
    total_ns: int = 0
    min_ns: int = 0
    max_ns: int = 0
    self_ns: int = 0
    errors: int = 0


def operation_stats(tree: Tree, *, self_ns: dict[int, int], trace_duration: int) -> list[dict[str, Any]]:
    """Per (service, operation): count, total, avg, min, max, self time and share of the trace."""
    table: dict[tuple[str, str], OperationStats] = {}
    for span_id, span in tree.spans.items():
        row = table.get((span.service, span.name))
        if row is None:
            row = table[(span.service, span.name)] = OperationStats(span.service, span.name, min_ns=span.duration)
        row.count += 1
        row.total_ns += span.duration
        row.min_ns = min(row.min_ns, span.duration)
        row.max_ns = max(row.max_ns, span.duration)
        row.self_ns += self_ns.get(span_id, 0)
        row.errors += span.status == STATUS_ERROR
    rows = sorted(table.values(), key=lambda r: r.self_ns, reverse=True)
    return [
        {
            "service": r.service,
            "operation": r.operation,
            "count": r.count,
            "errors": r.errors,
            "total_ns": r.total_ns,
            "avg_ns": r.total_ns // r.count,
            "min_ns": r.min_ns,
            "max_ns": r.max_ns,
            "self_ns": r.self_ns,
            "self_percent": round(100 * r.self_ns / trace_duration, 2) if trace_duration else 0.0,
        }
        for r in rows
    ]


def repeated_siblings(tree: Tree) -> list[dict[str, Any]]:
    """Groups of >= REPEATED_MIN siblings with the same service and operation (the N+1 pattern)."""
    out: list[dict[str, Any]] = []
    for parent_id, kids in tree.children.items():
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for child_id in kids:
            child = tree.spans[child_id]
            groups[(child.service, child.name)].append(child_id)
        for (service, name), members in groups.items():
            if len(members) < REPEATED_MIN:
                continue
            total = sum(tree.spans[m].duration for m in members)
            out.append(
                {
                    "parent_span_id": parent_id,
                    "service": service,
                    "operation": name,
                    "count": len(members),
                    "total_ns": total,
                    "span_ids": members,
                    "n_plus_one": len(members) >= N_PLUS_ONE_MIN,
                }
            )
    out.sort(key=lambda group: group["count"], reverse=True)
    return out


def _paths(tree: Tree, self_ns: dict[int, int]) -> dict[tuple[tuple[str, str], ...], dict[str, int]]:
    """(service, operation) ancestry path -> count, total and self time of the spans on it."""
    out: dict[tuple[tuple[str, str], ...], dict[str, int]] = {}
    for root in tree.roots:
        stack: list[tuple[int, tuple[tuple[str, str], ...]]] = [(root, ())]
        while stack:
            span_id, prefix = stack.pop()
            span = tree.spans[span_id]
            path = (*prefix, (span.service, span.name))
            entry = out.setdefault(path, {"count": 0, "total_ns": 0, "self_ns": 0})
            entry["count"] += 1
            entry["total_ns"] += span.duration
            entry["self_ns"] += self_ns.get(span_id, 0)
            stack.extend((child, path) for child in tree.children.get(span_id, ()))
    return out


def trace_diff(a: list[SpanLite], b: list[SpanLite]) -> list[dict[str, Any]]:
    """Align two traces by (service, operation) path and compare counts, durations and self times per path.

    Rows come in tree order (parents before children). `change` is "added" (only in B), "removed" (only in A),
    or "changed" / "same"; rows under an added or removed path are part of that subtree (`subtree_change`).
    """
    tree_a, tree_b = tree_build(a), tree_build(b)
    paths_a = _paths(tree_a, self_times(tree_a))
    paths_b = _paths(tree_b, self_times(tree_b))
    empty = {"count": 0, "total_ns": 0, "self_ns": 0}
    rows = []
    for path in sorted(set(paths_a) | set(paths_b)):
        in_a, in_b = paths_a.get(path, empty), paths_b.get(path, empty)
        if not in_a["count"]:
            change = "added"
        elif not in_b["count"]:
            change = "removed"
        elif in_a == in_b:
            change = "same"
        else:
            change = "changed"
        parent_change = ""
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in paths_a:
                parent_change = "added"
                break
            if prefix not in paths_b:
                parent_change = "removed"
                break
        rows.append(
            {
                "path": [list(step) for step in path],
                "depth": len(path) - 1,
                "service": path[-1][0],
                "operation": path[-1][1],
                "change": change,
                "subtree_change": parent_change,
                "a": in_a,
                "b": in_b,
                "count_diff": in_b["count"] - in_a["count"],
                "total_diff_ns": in_b["total_ns"] - in_a["total_ns"],
                "self_diff_ns": in_b["self_ns"] - in_a["self_ns"],
            }
        )
    return rows
