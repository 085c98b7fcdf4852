from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import trace_views

urlpatterns = [
    path(
        "traces/<str:trace_id>/analysis",
        login_not_required(trace_views.TraceAnalysisApi.as_view()),
        name="api-trace-analysis",
    ),
    path("trace-diff", login_not_required(trace_views.TraceDiffApi.as_view()), name="api-trace-diff"),
]
