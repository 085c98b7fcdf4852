from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import api

# API views authenticate themselves (session or API token) and answer 401/403 as JSON.
urlpatterns = [
    path(
        "traces/<str:trace_id>/service-graph",
        login_not_required(api.TraceServiceGraphApi.as_view()),
        name="api-trace-service-graph",
    ),
]
