"""The trace search filter: one form parses and validates search parameters for the API and the search page."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from django import forms

from .selectors import TraceQuery

DEFAULT_LOOKBACK_NS = 3600 * 1_000_000_000
MAX_LIMIT = 1000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)?\s*$", re.I)
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def duration_parse(text: str) -> int:
    """`250ms`, `1.5s`, `2m`, `100us` -> nanoseconds. A bare number is milliseconds."""
    match = _DURATION.match(text)
    if not match:
        raise forms.ValidationError(f"{text!r} is not a duration; use e.g. 250ms, 1.5s, 2m")
    number, unit = match.groups()
    return int(float(number) * _UNIT_NS[(unit or "ms").lower()])


def timestamp_parse(text: str) -> int:
    """ISO 8601, or epoch seconds / ms / µs / ns (told apart by magnitude) -> nanoseconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        value = float(text)
        if value < 1e11:
            return int(value * 1e9)
        if value < 1e14:
            return int(value * 1e6)
        if value < 1e17:
            return int(value * 1e3)
        return int(text.split(".")[0])
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise forms.ValidationError(f"{text!r} is not a time; use ISO 8601 or epoch seconds") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1_000_000) * 1000


class TraceSearchForm(forms.Form):
    service = forms.CharField(required=False, max_length=500)
    operation = forms.CharField(required=False, max_length=1000)
    min_duration = forms.CharField(required=False, max_length=40)
    max_duration = forms.CharField(required=False, max_length=40)
    status = forms.ChoiceField(required=False, choices=[("", "any"), ("error", "error"), ("ok", "ok")])
    start = forms.CharField(required=False, max_length=40)
    end = forms.CharField(required=False, max_length=40)
    limit = forms.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT)

    def __init__(self, data: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(data, *args, **kwargs)
        # `attr` repeats (attr=key=value&attr=...), which a plain form field cannot hold.
        self._attr_values = data.getlist("attr") if hasattr(data, "getlist") else list(data.get("attr") or [])

    def clean_min_duration(self) -> int | None:
        value = self.cleaned_data.get("min_duration")
        return duration_parse(value) if value else None

    def clean_max_duration(self) -> int | None:
        value = self.cleaned_data.get("max_duration")
        return duration_parse(value) if value else None

    def clean_start(self) -> int | None:
        value = self.cleaned_data.get("start")
        return timestamp_parse(value) if value else None

    def clean_end(self) -> int | None:
        value = self.cleaned_data.get("end")
        return timestamp_parse(value) if value else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        attributes = []
        for item in self._attr_values:
            key, sep, value = str(item).partition("=")
            if not sep or not key.strip():
                self.add_error(None, f"attr {item!r} must look like key=value")
                continue
            attributes.append((key.strip(), value))
        cleaned["attributes"] = attributes
        end = cleaned.get("end") or time.time_ns()
        start = cleaned.get("start") or end - DEFAULT_LOOKBACK_NS
        if start >= end:
            self.add_error("start", "start must be before end")
        cleaned["start"], cleaned["end"] = start, end
        low, high = cleaned.get("min_duration"), cleaned.get("max_duration")
        if low is not None and high is not None and low > high:
            self.add_error("max_duration", "max_duration must not be below min_duration")
        return cleaned

    def query(self) -> TraceQuery:
        data = self.cleaned_data
        return TraceQuery(
            start_ns=data["start"],
            end_ns=data["end"],
            service=data.get("service") or "",
            operation=data.get("operation") or "",
            attributes=data["attributes"],
            min_duration_ns=data.get("min_duration"),
            max_duration_ns=data.get("max_duration"),
            status=data.get("status") or "",
            limit=data.get("limit") or 20,
        )
