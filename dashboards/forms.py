from __future__ import annotations

import time
from typing import Any

from django import forms

from traces.filters import DEFAULT_LOOKBACK_NS, duration_parse, timestamp_parse

MAX_WINDOW_NS = 31 * 86_400 * 10**9


class TimeRangeForm(forms.Form):
    """`lookback=1h` (default) or `start` / `end` (ISO 8601 or epoch), as on the trace search."""

    lookback = forms.CharField(required=False, max_length=40)
    start = forms.CharField(required=False, max_length=40)
    end = forms.CharField(required=False, max_length=40)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            end = timestamp_parse(cleaned["end"]) if cleaned.get("end") else time.time_ns()
            if cleaned.get("start"):
                start = timestamp_parse(cleaned["start"])
            else:
                start = end - (duration_parse(cleaned["lookback"]) if cleaned.get("lookback") else DEFAULT_LOOKBACK_NS)
        except forms.ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        except (OverflowError, ValueError) as exc:
            raise forms.ValidationError(f"time out of range: {exc}") from exc
        if start >= end:
            raise forms.ValidationError("start must be before end")
        if end - start > MAX_WINDOW_NS:
            raise forms.ValidationError("the time range may span at most 31 days")
        cleaned["start_ns"], cleaned["end_ns"] = start, end
        return cleaned


class ServiceMapForm(TimeRangeForm):
    """The time range, plus a neighbourhood (`service`, `hops`) and a comparison time (`compare_at`)."""

    service = forms.CharField(required=False, max_length=400)
    hops = forms.IntegerField(required=False, min_value=1, max_value=6)
    compare_at = forms.CharField(required=False, max_length=40)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        cleaned["hops"] = cleaned.get("hops") or 1
        raw = cleaned.get("compare_at")
        cleaned["compare_at_ns"] = None
        if raw and "start_ns" in cleaned:
            try:
                at = timestamp_parse(raw)
            except forms.ValidationError as exc:
                raise forms.ValidationError([f"compare_at: {m}" for m in exc.messages]) from exc
            except (OverflowError, ValueError) as exc:
                raise forms.ValidationError(f"compare_at out of range: {exc}") from exc
            if not cleaned["start_ns"] < at < cleaned["end_ns"]:
                raise forms.ValidationError("compare_at must fall inside the time range")
            cleaned["compare_at_ns"] = at
        return cleaned


class EdgeForm(TimeRangeForm):
    source = forms.CharField(max_length=400)
    target = forms.CharField(max_length=400)
