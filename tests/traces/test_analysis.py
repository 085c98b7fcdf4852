"""Trace analysis algorithms on small hand-made trees with known answers."""

from __future__ import annotations

from traces.analysis import (
    SpanLite,
    clock_skew,
    critical_path,
    operation_stats,
    preorder,
    repeated_siblings,
    self_times,
    trace_diff,
    tree_build,
)


def span(
    span_id: int,
    parent: int | None,
    start: int,
    end: int,
    *,
    kind: int = 1,
    service: str = "svc",
    name: str = "",
    host: str = "h1",
    status: int = 0,
) -> SpanLite:
    return SpanLite(span_id, parent, start, end - start, kind, service, name or f"op{span_id}", status, host)


def test_critical_path_walks_back_from_the_last_finishing_child() -> None:
    tree = tree_build([span(1, None, 0, 100), span(2, 1, 10, 40), span(3, 1, 50, 90), span(4, 1, 20, 30)])
    assert critical_path(tree) == [(1, 90, 100), (3, 50, 90), (1, 40, 50), (2, 10, 40), (1, 0, 10)]


def test_critical_path_skips_children_that_end_after_the_returning_point() -> None:
    # 3 overlaps the start of 2 (which finishes last); after returning from 2 at t=50 only 4 (ends 30) is usable.
    tree = tree_build([span(1, None, 0, 100), span(2, 1, 50, 95), span(3, 1, 40, 60), span(4, 1, 5, 30)])
    assert critical_path(tree) == [(1, 95, 100), (2, 50, 95), (1, 30, 50), (4, 5, 30), (1, 0, 5)]


def test_critical_path_ignores_consumers_of_a_producer_and_clips_overflowing_children() -> None:
    tree = tree_build(
        [
            span(1, None, 0, 100, kind=4),  # producer
            span(2, 1, 10, 500, kind=5),  # its consumer runs long after: not blocking
            span(3, 1, 20, 150),  # overflows the parent: clipped to 100
        ]
    )
    assert critical_path(tree) == [(3, 20, 100), (1, 0, 20)]


def test_critical_path_descends_through_nested_spans() -> None:
    tree = tree_build([span(1, None, 0, 100), span(2, 1, 10, 90), span(3, 2, 20, 60), span(4, 3, 30, 50)])
    assert critical_path(tree) == [
        (1, 90, 100),
        (2, 60, 90),
        (3, 50, 60),
        (4, 30, 50),
        (3, 20, 30),
        (2, 10, 20),
        (1, 0, 10),
    ]


def test_clock_skew_centres_a_child_from_another_host_and_carries_the_shift_to_its_host() -> None:
    tree = tree_build(
        [
            span(1, None, 1000, 1100, host="a"),
            span(2, 1, 950, 990, host="b"),  # 40 long, starts 50 before its parent: its host runs late
            span(3, 2, 960, 970, host="b"),  # same host as 2: same shift
            span(4, 2, 1040, 1050, host="c"),  # another host, inside its parent once that is adjusted: left alone
            span(5, 2, 1020, 1030, host="d"),  # starts before the adjusted parent (1030): centred, (40-10)/2 = 15
        ]
    )
    deltas = clock_skew(tree)
    # latency = (100 - 40) / 2 = 30 -> child starts at 1030: shift +80
    assert deltas == {2: 80, 3: 80, 5: 25}


def test_clock_skew_only_keeps_an_async_child_from_starting_before_its_parent() -> None:
    tree = tree_build([span(1, None, 100, 110, host="a"), span(2, 1, 90, 200, host="b")])
    assert clock_skew(tree) == {2: 10}


def test_clock_skew_leaves_same_host_children_and_orphans_alone() -> None:
    tree = tree_build([span(1, None, 100, 110, host="a"), span(2, 1, 90, 105, host="a"), span(5, 99, 0, 10)])
    assert clock_skew(tree) == {}


def test_self_time_subtracts_the_union_of_children() -> None:
    tree = tree_build([span(1, None, 0, 100), span(2, 1, 10, 50), span(3, 1, 30, 70), span(4, 1, 90, 120)])
    assert self_times(tree)[1] == 100 - 60 - 10


def test_orphans_become_roots_after_the_true_roots() -> None:
    tree = tree_build([span(1, None, 10, 20), span(2, 777, 0, 5), span(3, 2, 1, 2)])
    assert tree.roots == [1, 2]
    assert tree.orphans == {2}
    assert preorder(tree) == [1, 2, 3]
    assert tree.depth == {1: 0, 2: 0, 3: 1}


def test_repeated_siblings_flag_an_n_plus_one() -> None:
    spans = [span(1, None, 0, 1000, service="checkout")]
    spans += [span(10 + i, 1, 10 * i, 10 * i + 8, service="checkout", name="SELECT orders") for i in range(38)]
    spans += [span(100, 1, 500, 510, name="SELECT user"), span(101, 1, 520, 530, name="SELECT user")]
    groups = repeated_siblings(tree_build(spans))
    assert len(groups) == 1
    assert groups[0]["operation"] == "SELECT orders" and groups[0]["count"] == 38 and groups[0]["n_plus_one"]


def test_operation_stats_add_up_to_the_trace() -> None:
    tree = tree_build(
        [span(1, None, 0, 100, name="GET"), span(2, 1, 10, 30, name="db"), span(3, 1, 40, 60, name="db", status=2)]
    )
    stats = operation_stats(tree, self_ns=self_times(tree), trace_duration=100)
    assert stats[0] == {
        "service": "svc",
        "operation": "GET",
        "count": 1,
        "errors": 0,
        "total_ns": 100,
        "avg_ns": 100,
        "min_ns": 100,
        "max_ns": 100,
        "self_ns": 60,
        "self_percent": 60.0,
    }
    assert stats[1]["operation"] == "db" and stats[1]["count"] == 2 and stats[1]["errors"] == 1
    assert sum(row["self_ns"] for row in stats) == 100


def test_trace_diff_aligns_by_path_and_marks_added_and_removed_subtrees() -> None:
    a = [
        span(1, None, 0, 100, name="GET"),
        span(2, 1, 10, 20, name="auth"),
        span(3, 1, 30, 40, name="db"),
        span(4, 1, 50, 60, name="db"),
    ]
    b = [
        span(1, None, 0, 150, name="GET"),
        span(3, 1, 30, 40, name="db"),
        span(5, 1, 50, 140, name="payment"),
        span(6, 5, 60, 130, name="bank"),
    ]
    rows = {tuple(tuple(step) for step in row["path"]): row for row in trace_diff(a, b)}
    get = rows[(("svc", "GET"),)]
    assert get["change"] == "changed" and get["total_diff_ns"] == 50
    assert rows[(("svc", "GET"), ("svc", "auth"))]["change"] == "removed"
    db = rows[(("svc", "GET"), ("svc", "db"))]
    assert (db["a"]["count"], db["b"]["count"], db["count_diff"]) == (2, 1, -1)
    assert rows[(("svc", "GET"), ("svc", "payment"))]["change"] == "added"
    bank = rows[(("svc", "GET"), ("svc", "payment"), ("svc", "bank"))]
    assert bank["change"] == "added" and bank["subtree_change"] == "added"


def test_a_hundred_thousand_span_chain_does_not_recurse() -> None:
    spans = [span(1, None, 0, 10**6)] + [span(i, i - 1, i, 10**6 - i) for i in range(2, 100_000)]
    tree = tree_build(spans)
    path = critical_path(tree)
    assert path[0] == (1, 10**6 - 2, 10**6) and len(path) == 2 * 99_999 - 1
    assert len(preorder(tree)) == 99_999
