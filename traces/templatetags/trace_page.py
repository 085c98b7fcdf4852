"""Template filters of the trace compare page: signed differences, formatted for people."""

from __future__ import annotations

from django import template

from .trace_format import duration

register = template.Library()

MINUS = "\u2212"


@register.filter
def signed_duration(nanoseconds: int | None) -> str:
    """+12.3 ms / −4.0 ms; empty for no difference."""
    ns = int(nanoseconds or 0)
    if ns == 0:
        return ""
    return ("+" if ns > 0 else MINUS) + duration(abs(ns))


@register.filter
def signed_count(value: int | None) -> str:
    number = int(value or 0)
    if number == 0:
        return ""
    return f"+{number}" if number > 0 else f"{MINUS}{abs(number)}"


@register.filter
def percent_change(before: int | None, after: int | None) -> str:
    """Relative change from `before` to `after`, as "+35%" / "−12%"; empty when there is no baseline."""
    old, new = int(before or 0), int(after or 0)
    if old == 0 or old == new:
        return ""
    change = (new - old) * 100 / old
    text = f"{abs(change):.0f}%" if abs(change) >= 1 else f"{abs(change):.1f}%"
    return ("+" if change > 0 else MINUS) + text


@register.filter
def change_class(difference: int | None, what: str = "time") -> str:
    """CSS class of a difference: "slower" / "faster" for times, "more" / "fewer" for counts, "" for none."""
    number = int(difference or 0)
    if number == 0:
        return ""
    if what == "count":
        return "more" if number > 0 else "fewer"
    return "slower" if number > 0 else "faster"


@register.filter
def indent_px(depth: int | None) -> int:
    """Left padding of a call-path row: 16 px per level, compressed past 20 levels so deep paths stay readable."""
    level = int(depth or 0)
    return 8 + (level * 16 if level <= 20 else 320 + (level - 20) * 4)
