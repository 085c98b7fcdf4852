"""The trace search filter: one form parses and validates search parameters for the API and the search page.

Attribute conditions (`attr`, repeatable, all ANDed; see selectors.AttrCondition for the exact semantics):

    key=value     typed equality: `500` matches the number 500 and the string "500", `true` the boolean
    key!=value    the attribute is present with another value
    key=~regex    PostgreSQL regular expression on the value's text (unanchored; `(?i)` at the start ignores case)
    key>n  key>=n  key<n  key<=n
                  numeric comparison; numbers and numeric-looking strings take part, other values never match
    exists:key    the attribute is present
    missing:key   the attribute is absent

A condition holds when the span's own attributes or its resource's attributes satisfy it (`missing:` needs both to
lack the key). The key is everything before the first operator character (= ! < > ~), the value everything after.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from django import forms

from .selectors import NUMERIC_TEXT_PATTERN, AttrCondition, TraceQuery, regex_error

DEFAULT_LOOKBACK_NS = 3600 * 1_000_000_000
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
LOOKBACK_PRESETS = ("15m", "1h", "6h", "24h", "7d")
MAX_ATTR_CONDITIONS = 20
MAX_ATTR_KEY = 256
MAX_ATTR_VALUE = 1000
MAX_REGEX = 500
# Nanosecond values must fit PostgreSQL's bigint.
_MAX_NS = 2**63 - 1
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d)?\s*$", re.I)
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
ATTR_SYNTAX = "key=value, key!=value, key=~regex, key>n (or >=, <, <=), exists:key or missing:key"
# The key is everything up to the first operator character; the value is the rest, verbatim.
_ATTR = re.compile(r"^(?P<key>[^=!<>~]*)(?P<op>!=|=~|>=|<=|=|>|<)(?P<value>.*)$", re.S)
_ATTR_PRESENCE = re.compile(r"^\s*(?P<op>exists|missing):(?P<key>[^=!<>~]*)$", re.S)
_NUMBER = re.compile(NUMERIC_TEXT_PATTERN)


def duration_parse(text: str) -> int:
    """`250ms`, `1.5s`, `2m`, `100us`, `7d` -> nanoseconds. A bare number is milliseconds."""
    match = _DURATION.match(text)
    if not match:
        raise forms.ValidationError(f"{text!r} is not a duration; use e.g. 250ms, 1.5s, 2m")
    number, unit = match.groups()
    value = float(number) * _UNIT_NS[(unit or "ms").lower()]
    if not value < _MAX_NS:  # also catches inf from absurdly long digit strings
        raise forms.ValidationError(f"{text!r} is too long a duration")
    return int(value)


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


def _timestamp_checked(text: str) -> int:
    value = timestamp_parse(text)
    if not -_MAX_NS <= value <= _MAX_NS:
        raise forms.ValidationError(f"{text!r} is out of range")
    return value


def attr_condition_parse(text: str) -> AttrCondition:
    """One `attr` value -> AttrCondition. Raise ValidationError with a message naming the syntax otherwise."""
    if "\x00" in text:
        raise forms.ValidationError(f"attr {text!r} contains a NUL character")
    presence = _ATTR_PRESENCE.match(text)
    match = None if presence else _ATTR.match(text)
    if presence:
        key, op, value = presence["key"].strip(), presence["op"], ""
    elif match:
        key, op, value = match["key"].strip(), match["op"], match["value"]
    else:
        raise forms.ValidationError(f"attr {text!r} must look like {ATTR_SYNTAX}")
    if not key:
        raise forms.ValidationError(f"attr {text!r} has no key; use {ATTR_SYNTAX}")
    if len(key) > MAX_ATTR_KEY:
        raise forms.ValidationError(f"attr key is longer than {MAX_ATTR_KEY} characters")
    if len(value) > MAX_ATTR_VALUE:
        raise forms.ValidationError(f"attr value is longer than {MAX_ATTR_VALUE} characters")
    if op in (">", ">=", "<", "<="):
        value = value.strip()
        if not _NUMBER.match(value):
            raise forms.ValidationError(f"attr {text!r}: {op} needs a number, got {value!r}")
    elif op == "=~":
        if len(value) > MAX_REGEX:
            raise forms.ValidationError(f"attr {text!r}: the regular expression is longer than {MAX_REGEX} characters")
        problem = regex_error(value)
        if problem:
            raise forms.ValidationError(f"attr {text!r}: invalid regular expression ({problem})")
    return AttrCondition(key, op, value)


class TraceSearchForm(forms.Form):
    service = forms.CharField(required=False, max_length=500)
    operation = forms.CharField(required=False, max_length=1000)
    min_duration = forms.CharField(required=False, max_length=40)
    max_duration = forms.CharField(required=False, max_length=40)
    status = forms.ChoiceField(required=False, choices=[("", "any"), ("error", "error"), ("ok", "ok")])
    # A relative window ending at `end` (default now), used when `start` is not given: links stay "the last hour".
    lookback = forms.CharField(required=False, max_length=40)
    start = forms.CharField(required=False, max_length=40)
    end = forms.CharField(required=False, max_length=40)
    limit = forms.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT)

    def __init__(self, data: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(data, *args, **kwargs)
        # `attr` repeats (attr=key=value&attr=...), which a plain form field cannot hold. Blank ones are what an
        # empty condition row of the search page submits: ignored.
        values = data.getlist("attr") if hasattr(data, "getlist") else data.get("attr") or []
        if isinstance(values, str):
            values = [values]
        self.attr_values: list[str] = [str(value) for value in values if str(value).strip()]
        # Position in attr_values -> message, so the page can mark the condition at fault.
        self.attr_errors: dict[int, str] = {}

    def clean_min_duration(self) -> int | None:
        value = self.cleaned_data.get("min_duration")
        return duration_parse(value) if value else None

    def clean_max_duration(self) -> int | None:
        value = self.cleaned_data.get("max_duration")
        return duration_parse(value) if value else None

    def clean_lookback(self) -> int | None:
        value = self.cleaned_data.get("lookback")
        if not value:
            return None
        lookback = duration_parse(value)
        if lookback <= 0:
            raise forms.ValidationError("lookback must be above zero")
        return lookback

    def clean_start(self) -> int | None:
        value = self.cleaned_data.get("start")
        return _timestamp_checked(value) if value else None

    def clean_end(self) -> int | None:
        value = self.cleaned_data.get("end")
        return _timestamp_checked(value) if value else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        attributes = []
        if len(self.attr_values) > MAX_ATTR_CONDITIONS:
            self.add_error(None, f"at most {MAX_ATTR_CONDITIONS} attr conditions")
        for index, item in enumerate(self.attr_values[:MAX_ATTR_CONDITIONS]):
            try:
                attributes.append(attr_condition_parse(item))
            except forms.ValidationError as exc:
                self.attr_errors[index] = exc.messages[0]
                self.add_error(None, exc)
        cleaned["attributes"] = attributes
        end = cleaned.get("end")
        if end is None:
            end = time.time_ns()
        start = cleaned.get("start")
        if start is None:
            start = end - (cleaned.get("lookback") or DEFAULT_LOOKBACK_NS)
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
            limit=data.get("limit") or DEFAULT_LIMIT,
        )
