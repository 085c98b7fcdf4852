"""Server-rendered pages of the traces app."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import selectors
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
