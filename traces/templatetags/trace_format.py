from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(nanoseconds: int | str | None) -> str:
    """Nanoseconds as a short human duration: 850 µs, 12.3 ms, 4.21 s, 3m 05s."""
    try:
        ns = int(nanoseconds or 0)
    except (TypeError, ValueError):
        return ""
    if ns < 1_000:
        return f"{ns} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.0f} µs"
    if ns < 1_000_000_000:
        ms = ns / 1_000_000
        return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"
    seconds = ns / 1_000_000_000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"


@register.filter
def is_within(path: str, prefix: str) -> bool:
    """True when `path` is `prefix` or below it (for highlighting the nav entry of a section)."""
    return bool(prefix) and (path == prefix or path.startswith(prefix.rstrip("/") + "/"))
