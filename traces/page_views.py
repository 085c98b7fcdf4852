"""Server-rendered shells of the trace page, the trace compare page and the trace upload page.

The trace page renders its header from the per-trace summary; the waterfall is built in the browser by the ES
modules under static/js/trace/ from GET /api/v1/traces/<id> and /analysis. The compare page is rendered entirely
here (the diff is a table). The upload page posts files to /api/v1/uploads/*.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import page_selectors, selectors, trace_selectors, uploads
from .page_forms import TraceCompareForm

# The viewer's ES modules, preloaded in parallel instead of discovered import by import.
VIEWER_MODULES = [
    f"js/{name}.js"
    for name in (
        "api",
        "colors",
        "trace/common",
        "trace/details",
        "trace/dom",
        "trace/find",
        "trace/flame",
        "trace/format",
        "trace/minimap",
        "trace/model",
        "trace/repeated",
        "trace/stats",
        "trace/viewer",
        "trace/waterfall",
    )
]


def trace_detail(request: HttpRequest, trace_id: str) -> HttpResponse:
    """One trace: header, minimap, waterfall, details, statistics, flame graph, repeated spans."""
    try:
        parsed = selectors.trace_id_parse(trace_id)
    except ValueError as exc:
        return render(
            request,
            "400.html",
            {"title": "That is not a trace ID", "message": str(exc), "value": trace_id},
            status=400,
        )
    summary = page_selectors.trace_summary(
        project_ids=selectors.project_ids_visible(user=request.user), trace_id=parsed
    )
    if summary is None:
        return render(request, "404.html", {"trace_id": parsed.hex}, status=404)
    return render(request, "traces/trace_detail.html", {"trace": summary, "modules": VIEWER_MODULES})


def trace_compare(request: HttpRequest) -> HttpResponse:
    """Two traces aligned by (service, operation) path: what was added, removed, slower or faster."""
    project_ids = selectors.project_ids_visible(user=request.user)
    # A link with only one ID (the trace page's "Compare…") pre-fills the form instead of failing it.
    submitted = "a" in request.GET and "b" in request.GET
    initial = {key: request.GET.get(key, "") for key in ("a", "b")}
    form = TraceCompareForm(request.GET if submitted else None, initial=initial, project_ids=project_ids)
    context: dict[str, object] = {"form": form}
    if submitted and form.is_valid():
        trace_a = page_selectors.trace_summary(project_ids=project_ids, trace_id=form.cleaned_data["a"])
        trace_b = page_selectors.trace_summary(project_ids=project_ids, trace_id=form.cleaned_data["b"])
        if trace_a and trace_b:
            context.update(
                diff=trace_selectors.trace_diff_document(form.spans["a"], form.spans["b"]),
                trace_a=trace_a,
                trace_b=trace_b,
                duration_diff=trace_b["duration_ns"] - trace_a["duration_ns"],
            )
    return render(request, "traces/trace_compare.html", context, status=400 if submitted and form.errors else 200)


def trace_upload(request: HttpRequest) -> HttpResponse:
    """Open a trace file in the waterfall without storing it, and optionally store it into a project."""
    return render(
        request,
        "traces/trace_upload.html",
        {
            "projects": uploads.upload_projects(user=request.user),
            "max_mib": uploads.UPLOAD_MAX_BYTES // (1024 * 1024),
        },
    )
