"""Server-rendered pages of the traces app."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from . import selectors
from .filters import LOOKBACK_PRESETS, TraceSearchForm
from .models import IngestToken, Project


def home(request: HttpRequest) -> HttpResponse:
    """Overview: where to send spans, the projects you can see, and the newest traces."""
    project_ids = selectors.project_ids_visible(user=request.user)
    now = time.time_ns()
    recent = selectors.trace_search(
        project_ids=project_ids,
        query=selectors.TraceQuery(start_ns=now - 24 * 3600 * 10**9, end_ns=now + 60 * 10**9, limit=15),
    )
    projects = Project.objects.filter(id__in=project_ids).order_by("name")
    token_counts = {
        project.id: IngestToken.objects.filter(project=project, revoked_at=None).count() for project in projects
    }
    return render(
        request,
        "traces/home.html",
        {
            "projects": [(project, token_counts[project.id]) for project in projects],
            "recent": recent,
            "services": selectors.service_list(project_ids=project_ids),
            "site_root": settings.SITE_ROOT,
        },
    )


def trace_search_page(request: HttpRequest) -> HttpResponse:
    """The trace explorer. The URL holds the whole search; the form is validated here with the same form as the API
    (so errors render server-side) and the results are fetched by static/js/search.js from /api/v1/traces."""
    trace_id = request.GET.get("trace_id", "").strip()
    trace_id_error = ""
    if trace_id:
        # Jumping to a trace ignores every other filter (and the time range): the trace page finds it by ID.
        try:
            return HttpResponseRedirect(f"/traces/{selectors.trace_id_parse(trace_id).hex}/")
        except ValueError as exc:
            trace_id_error = str(exc)
    form = TraceSearchForm(request.GET)
    valid = form.is_valid()
    attr_rows = [(value, form.attr_errors.get(index, "")) for index, value in enumerate(form.attr_values)]
    attr_messages = set(form.attr_errors.values())
    other_errors = [message for message in form.non_field_errors() if message not in attr_messages]
    has_range = bool(request.GET.get("start") or request.GET.get("end"))
    lookback = request.GET.get("lookback", "") or ("" if has_range else "1h")
    return render(
        request,
        "traces/search.html",
        {
            "form": form,
            "valid": valid,
            "trace_id": trace_id,
            "trace_id_error": trace_id_error,
            "attr_rows": attr_rows or [("", "")],
            "other_errors": other_errors,
            "lookback": lookback,
            "lookback_presets": LOOKBACK_PRESETS
            if lookback in LOOKBACK_PRESETS or not lookback
            else (*LOOKBACK_PRESETS, lookback),
            "status": request.GET.get("status", ""),
        },
    )
