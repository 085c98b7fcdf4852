"""The log-bucket latency histogram: quantiles within the stated relative error, exact merges, JSON round trip."""

from __future__ import annotations

import math
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboards.histogram import LatencyHistogram

QS = (0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)


def exact(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def lognormal(n: int, seed: int, mu: float = math.log(5_000_000), sigma: float = 1.5) -> list[int]:
    rng = random.Random(seed)
    return [max(1, int(rng.lognormvariate(mu, sigma))) for _ in range(n)]


def assert_close(histogram: LatencyHistogram, values: list[int], accuracy: float) -> None:
    for q in QS:
        got = histogram.quantile(q)
        want = exact(values, q)
        assert got is not None
        assert abs(got - want) <= accuracy * want + 1e-9, (q, got, want)


@pytest.mark.parametrize("accuracy", [0.005, 0.01, 0.02, 0.05])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_are_within_the_relative_accuracy_on_lognormal_latencies(accuracy: float, seed: int) -> None:
    values = lognormal(20_000, seed)
    histogram = LatencyHistogram(accuracy)
    histogram.add_many(values)
    assert histogram.count == len(values)
    assert_close(histogram, values, accuracy)


def test_bulk_add_equals_one_by_one_and_repeated_add() -> None:
    values = lognormal(5_000, 7) + [0, -5, 0]
    bulk, single, weighted = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    bulk.add_many(values)
    for value in values:
        single.add(value)
    for value in set(values):
        weighted.add(value, values.count(value))
    assert bulk == single == weighted
    assert bulk.sum == sum(v for v in values if v > 0)


def test_merge_equals_the_histogram_of_all_values() -> None:
    a, b = lognormal(3_000, 11), lognormal(4_000, 12, mu=math.log(80_000_000), sigma=0.5)
    left, right, combined = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    left.add_many(a)
    right.add_many(b)
    combined.add_many(a + b)
    left.merge(right)
    assert left == combined
    assert_close(left, a + b, 0.02)


def test_merging_different_accuracies_is_refused() -> None:
    with pytest.raises(ValueError, match="accuracy"):
        LatencyHistogram(0.01).merge(LatencyHistogram(0.02))


def test_merging_an_empty_histogram_changes_nothing() -> None:
    histogram = LatencyHistogram()
    histogram.add_many([10, 20, 30])
    before = LatencyHistogram.from_json(histogram.to_json())
    histogram.merge(LatencyHistogram())
    assert histogram == before


def test_json_round_trip_is_exact_and_compact() -> None:
    values = lognormal(10_000, 5) + [0]
    histogram = LatencyHistogram()
    histogram.add_many(values)
    document = orjson.loads(orjson.dumps(histogram.to_json()))
    back = LatencyHistogram.from_json(document)
    assert back == histogram
    assert back.quantiles(QS) == histogram.quantiles(QS)
    assert len(orjson.dumps(document)) < 2_500  # a few hundred buckets at most, as two int lists
    assert sorted(document) == ["a", "c", "hi", "k", "lo", "s", "z"]


@pytest.mark.parametrize(
    "document", [{}, {"a": 2}, {"a": 0.02, "k": [1, 2], "c": [1]}, {"a": 0.02, "k": None}, {"a": "x"}]
)
def test_from_json_rejects_malformed_documents(document: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LatencyHistogram.from_json(document)


def test_empty_histogram() -> None:
    histogram = LatencyHistogram()
    assert histogram.count == 0
    assert histogram.quantile(0.5) is None
    assert LatencyHistogram.from_json(histogram.to_json()) == histogram
    histogram.add_many([])
    assert histogram.count == 0


def test_zero_and_negative_durations_count_as_zero() -> None:
    histogram = LatencyHistogram()
    histogram.add_many([0, -3, 0, 1_000_000])
    assert histogram.count == 4
    assert histogram.zero == 3
    assert histogram.quantile(0.5) == 0.0
    assert histogram.quantile(1.0) == 1_000_000


def test_a_single_value_is_exact_at_every_quantile() -> None:
    histogram = LatencyHistogram()
    histogram.add(123_456_789)
    assert histogram.quantiles((0.0, 0.5, 1.0)) == [123_456_789] * 3


def test_extremes_one_nanosecond_and_a_day() -> None:
    values = [1, 2, 3, 86_400 * 10**9]
    histogram = LatencyHistogram()
    histogram.add_many(values)
    assert_close(histogram, values, 0.02)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1])
def test_accuracy_must_be_a_fraction(bad: float) -> None:
    with pytest.raises(ValueError):
        LatencyHistogram(bad)


def test_quantile_argument_is_checked() -> None:
    with pytest.raises(ValueError):
        LatencyHistogram().quantile(1.5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-10, max_value=10**13), min_size=1, max_size=300), st.floats(0, 1))
def test_any_values_any_quantile(values: list[int], q: float) -> None:
    histogram = LatencyHistogram()
    histogram.add_many(values)
    got = histogram.quantile(q)
    want = max(exact(values, q), 0)
    assert got is not None
    assert abs(got - want) <= 0.02 * want + 1e-6


def test_merge_json_equals_merging_the_parsed_histogram() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    a.add_many([0, 5, 1_000, 2_000_000, 7_500_000])
    b.add_many([3, 1_000, 90_000_000])
    expected = LatencyHistogram()
    expected.merge(a)
    expected.merge(b)
    merged = LatencyHistogram()
    merged.merge_json(a.to_json())
    merged.merge_json(b.to_json())
    assert merged == expected
    with pytest.raises(ValueError, match="accuracy"):
        LatencyHistogram(0.05).merge_json(a.to_json())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=-5, max_value=10**12), st.integers(min_value=1, max_value=3)), max_size=40
    ),
    st.data(),
)
def test_taking_back_calls_leaves_the_histogram_of_what_remains(
    added: list[tuple[int, int]], data: st.DataObject
) -> None:
    # Edge pairing adds a trace's calls and takes them back when the trace is paired again, in bulk.
    taken = [(duration, data.draw(st.integers(min_value=0, max_value=n))) for duration, n in added]
    changed = LatencyHistogram()
    changed.apply_changes([*added, *[(duration, -n) for duration, n in taken]])
    remaining = [duration for (duration, n), (_d, back) in zip(added, taken, strict=True) for _ in range(n - back)]
    expected = LatencyHistogram()
    expected.add_many(remaining)
    assert (changed.buckets, changed.zero, changed.sum) == (expected.buckets, expected.zero, expected.sum)
    # Taking back cannot narrow the range: min and max stay those of everything ever added.
    if added:
        assert (changed.min, changed.max) == (min(d for d, _n in added), max(d for d, _n in added))
