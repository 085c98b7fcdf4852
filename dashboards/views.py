"""Server-rendered pages of the dashboards app. The data comes from the RED API, fetched by the page's script."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from traces.filters import LOOKBACK_PRESETS
from traces.models import Operation
from traces.selectors import project_ids_visible

from .models import SpanRollup

DEFAULT_LOOKBACK = "1h"


def _lookback_context(request: HttpRequest) -> dict[str, object]:
    has_range = bool(request.GET.get("start") or request.GET.get("end"))
    lookback = request.GET.get("lookback", "") or ("" if has_range else DEFAULT_LOOKBACK)
    return {
        "lookback": lookback,
        "lookback_presets": LOOKBACK_PRESETS,
        "custom_range": has_range and not request.GET.get("lookback"),
    }


def service_list(request: HttpRequest) -> HttpResponse:
    """Every service with rate, error %, p50/p95/p99 and sparklines; static/js/services.js fetches
    /api/v1/services/ with the page's query string (lookback or start/end) and sorts client side."""
    return render(request, "dashboards/service_list.html", _lookback_context(request))


def service_map(request: HttpRequest) -> HttpResponse:
    """The service map: services, databases, queues and external endpoints with the calls between them (rate,
    error %, latency), optionally around one service and compared before / after a moment. static/js/service_map.js
    fetches /api/v1/service-map/ with the page's query string (lookback or start/end, service, hops, compare_at)."""
    return render(request, "dashboards/service_map.html", _lookback_context(request))


def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    """One service: RED charts with exemplar traces, operations, slowest and recent error traces.
    static/js/service.js fetches /api/v1/services/<name>/ with the page's query string. A service never seen in
    the user's projects gets a 404 page here rather than an empty shell."""
    project_ids = project_ids_visible(user=request.user)
    known = (
        Operation.objects.filter(project_id__in=project_ids, service_name=name).exists()
        or SpanRollup.objects.filter(project_id__in=project_ids, service_name=name).exists()
    )
    if not known:
        return render(request, "dashboards/service_detail.html", {"name": name, "not_found": True}, status=404)
    return render(request, "dashboards/service_detail.html", {"name": name, **_lookback_context(request)})
