from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import views

urlpatterns = [
    path("traces", login_not_required(views.TraceSearchApi.as_view()), name="api-trace-search"),
    path("traces/<str:trace_id>", login_not_required(views.TraceDetailApi.as_view()), name="api-trace-detail"),
    path("services", login_not_required(views.ServiceListApi.as_view()), name="api-service-list"),
    path(
        "services/<str:name>/operations",
        login_not_required(views.OperationListApi.as_view()),
        name="api-operation-list",
    ),
    path("attributes", login_not_required(views.AttributeKeyListApi.as_view()), name="api-attribute-list"),
    # `path:` because attribute keys may contain slashes; the literal `/values` suffix still ends the key.
    path(
        "attributes/<path:key>/values",
        login_not_required(views.AttributeValueListApi.as_view()),
        name="api-attribute-value-list",
    ),
]
