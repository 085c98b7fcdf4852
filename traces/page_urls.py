"""URLs of the trace, compare and upload pages. The fixed paths come before `traces/<trace_id>/`."""

from django.urls import path

from . import page_views

urlpatterns = [
    path("traces/compare/", page_views.trace_compare, name="trace-compare"),
    path("traces/upload/", page_views.trace_upload, name="trace-upload"),
    path("traces/<str:trace_id>/", page_views.trace_detail, name="trace-detail"),
]
