"""Server-rendered pages of the dashboards app. The data comes from the RED API, fetched by the page's script."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from traces.filters import LOOKBACK_PRESETS

DEFAULT_LOOKBACK = "1h"


def service_list(request: HttpRequest) -> HttpResponse:
    """Every service with rate, error %, p50/p95/p99 and sparklines; static/js/services.js fetches
    /api/v1/services/ with the page's query string (lookback or start/end) and sorts client side."""
    has_range = bool(request.GET.get("start") or request.GET.get("end"))
    lookback = request.GET.get("lookback", "") or ("" if has_range else DEFAULT_LOOKBACK)
    return render(
        request,
        "dashboards/service_list.html",
        {
            "lookback": lookback,
            "lookback_presets": LOOKBACK_PRESETS,
            "custom_range": has_range and not request.GET.get("lookback"),
        },
    )
