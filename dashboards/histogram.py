"""A mergeable latency histogram with log-scale buckets and a relative-accuracy guarantee (DDSketch's idea).

Contract: for a histogram with accuracy `a` (0 < a < 1), `quantile(q)` returns a value within a relative error of
`a` of the exact lower q-quantile of the added values (the value at rank floor(q * (n - 1)) of the sorted list),
clamped to the exact [min, max]. Merging two histograms of the same accuracy gives exactly the histogram of all their
values, so per-minute rollups can be summed into hours, services or edges without losing the guarantee.

Bucket math: gamma = (1 + a) / (1 - a). A positive duration x (ns) goes to bucket i = ceil(log(x) / log(gamma)),
which covers (gamma^(i-1), gamma^i]. Its representative value 2 * gamma^i / (gamma + 1) is within a relative error
of a of every value in the bucket. Zero and negative durations (clock bugs, zero-length spans) are counted in a
separate zero bucket and represented as 0. With a = 2 %, 1 µs .. 100 s spans at most ~460 buckets; the dict is
sparse, so a typical service needs a few dozen.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

DEFAULT_ACCURACY = 0.02


class LatencyHistogram:
    """Counts of durations (ns) in log-scale buckets; see the module docstring for the accuracy contract."""

    __slots__ = ("_inv_log_gamma", "accuracy", "buckets", "gamma", "max", "min", "sum", "zero")

    def __init__(self, accuracy: float = DEFAULT_ACCURACY) -> None:
        if not 0.0 < accuracy < 1.0:
            raise ValueError("accuracy must be between 0 and 1 (exclusive)")
        self.accuracy = accuracy
        self.gamma = (1.0 + accuracy) / (1.0 - accuracy)
        self._inv_log_gamma = 1.0 / math.log(self.gamma)
        self.buckets: dict[int, int] = {}
        self.zero = 0  # durations <= 0
        self.sum = 0  # exact, in ns: mean = sum / count
        self.min: int | None = None
        self.max: int | None = None

    @property
    def count(self) -> int:
        return self.zero + sum(self.buckets.values())

    def _index(self, value: float) -> int:
        return math.ceil(math.log(value) * self._inv_log_gamma)

    def _track(self, low: int, high: int) -> None:
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)

    def add(self, duration_ns: int, count: int = 1) -> None:
        """Add one duration (or `count` equal ones). Non-positive durations land in the zero bucket."""
        if count > 0:
            self.apply_changes(((duration_ns, count),))

    def add_many(self, durations_ns: Iterable[int]) -> None:
        """Bulk add: one pass computing indexes, one Counter update (several times faster than add() in a loop)."""
        values = list(durations_ns)
        if not values:
            return
        positive = [v for v in values if v > 0]
        self.zero += len(values) - len(positive)
        if positive:
            inv, log, ceil = self._inv_log_gamma, math.log, math.ceil
            counted = Counter(ceil(log(v) * inv) for v in positive)
            buckets = self.buckets
            for index, n in counted.items():
                buckets[index] = buckets.get(index, 0) + n
            self.sum += sum(positive)
        self._track(min(values), max(values))

    def merge(self, other: LatencyHistogram) -> None:
        """Add all of `other`'s counts into this histogram (same accuracy required: bucket bounds must agree)."""
        if other.accuracy != self.accuracy:
            raise ValueError(f"cannot merge histograms of accuracy {self.accuracy} and {other.accuracy}")
        for index, n in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + n
        self.zero += other.zero
        self.sum += other.sum
        if other.min is not None and other.max is not None:
            self._track(other.min, other.max)

    def merge_json(self, data: dict[str, Any]) -> None:
        """merge(from_json(data)) without building the intermediate histogram: map reads merge thousands of rows."""
        if float(data["a"]) != self.accuracy:
            raise ValueError(f"cannot merge histograms of accuracy {self.accuracy} and {data['a']}")
        buckets = self.buckets
        get = buckets.get
        for index, n in zip(data.get("k", ()), data.get("c", ()), strict=True):
            if n > 0:
                buckets[index] = get(index, 0) + n
        self.zero += data.get("z", 0)
        self.sum += data.get("s", 0)
        low, high = data.get("lo"), data.get("hi")
        if low is not None and high is not None:
            self._track(low, high)

    def remove(self, duration_ns: int, count: int = 1) -> None:
        """Take back durations added earlier (a trace whose edges are counted again). min and max stay as they
        were: they cannot be recomputed without the values, and they only clamp quantiles."""
        if count > 0:
            self.apply_changes(((duration_ns, -count),))

    def apply_changes(self, changes: Iterable[tuple[int, int]]) -> None:
        """add(duration, n) for n > 0 and remove(duration, -n) for n < 0, in order, in one pass: edge pairing applies
        hundreds of thousands of changes per batch, and a method call per change cost more than the arithmetic."""
        inv, log, ceil = self._inv_log_gamma, math.log, math.ceil
        buckets = self.buckets
        zero, total, low, high = self.zero, self.sum, self.min, self.max
        for duration, n in changes:
            if n > 0:
                if duration <= 0:
                    zero += n
                else:
                    index = ceil(log(duration) * inv)
                    buckets[index] = buckets.get(index, 0) + n
                total += max(duration, 0) * n
                low = duration if low is None or duration < low else low
                high = duration if high is None or duration > high else high
            elif n < 0:
                if duration <= 0:
                    zero = max(0, zero + n)
                else:
                    index = ceil(log(duration) * inv)
                    left = buckets.get(index, 0) + n
                    if left > 0:
                        buckets[index] = left
                    else:
                        buckets.pop(index, None)
                total = max(0, total + max(duration, 0) * n)
        self.zero, self.sum, self.min, self.max = zero, total, low, high

    def _value(self, index: int) -> float:
        return 2.0 * self.gamma**index / (self.gamma + 1.0)

    def quantile(self, q: float) -> float | None:
        """The lower q-quantile (0 <= q <= 1) within the relative accuracy, or None for an empty histogram."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be between 0 and 1")
        total = self.count
        if total == 0 or self.min is None or self.max is None:
            return None
        rank = q * (total - 1)  # the item at floor(rank) (0-based) is the one we estimate
        seen = self.zero
        if seen > rank:
            value = 0.0
        else:
            value = float(self.max)
            for index in sorted(self.buckets):
                seen += self.buckets[index]
                if seen > rank:
                    value = self._value(index)
                    break
        # Clamping keeps p0/p100 exact and never answers outside the observed range.
        return min(max(value, float(max(self.min, 0))), float(max(self.max, 0)))

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        return [self.quantile(q) for q in qs]

    def to_json(self) -> dict[str, Any]:
        """Compact JSON: {"a": accuracy, "k": [bucket indexes ascending], "c": [counts], "z": zero count,
        "s": sum ns, "lo": min, "hi": max}. Indexes are small ints (about +-1,000), so the lists stay short."""
        keys = sorted(self.buckets)
        return {
            "a": self.accuracy,
            "k": keys,
            "c": [self.buckets[k] for k in keys],
            "z": self.zero,
            "s": self.sum,
            "lo": self.min,
            "hi": self.max,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencyHistogram:
        """Inverse of to_json(); raises ValueError on a malformed document."""
        try:
            histogram = cls(float(data["a"]))
            keys, counts = list(data.get("k", [])), list(data.get("c", []))
            if len(keys) != len(counts):
                raise ValueError("k and c differ in length")
            histogram.buckets = {int(k): int(c) for k, c in zip(keys, counts, strict=True) if int(c) > 0}
            histogram.zero = int(data.get("z", 0))
            histogram.sum = int(data.get("s", 0))
            low, high = data.get("lo"), data.get("hi")
            histogram.min = None if low is None else int(low)
            histogram.max = None if high is None else int(high)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed histogram: {exc}") from exc
        return histogram

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return (
            self.accuracy == other.accuracy
            and self.buckets == other.buckets
            and self.zero == other.zero
            and self.sum == other.sum
            and self.min == other.min
            and self.max == other.max
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"LatencyHistogram(accuracy={self.accuracy}, count={self.count}, buckets={len(self.buckets)})"
