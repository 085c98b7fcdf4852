from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import trace_views

urlpatterns = [
    path(
        "traces/<str:trace_id>/analysis",
        login_not_required(trace_views.TraceAnalysisApi.as_view()),
        name="api-trace-analysis",
    ),
    path(
        "traces/<str:trace_id>/export",
        login_not_required(trace_views.TraceExportApi.as_view()),
        name="api-trace-export",
    ),
    path(
        "traces/<str:trace_id>/summary",
        login_not_required(trace_views.TraceSummaryApi.as_view()),
        name="api-trace-summary",
    ),
    path("trace-diff", login_not_required(trace_views.TraceDiffApi.as_view()), name="api-trace-diff"),
    path("uploads/view", login_not_required(trace_views.UploadViewApi.as_view()), name="api-upload-view"),
    path("uploads/store", login_not_required(trace_views.UploadStoreApi.as_view()), name="api-upload-store"),
]
