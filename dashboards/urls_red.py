from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import red_api

urlpatterns = [
    path("services/", login_not_required(red_api.ServiceRedListApi.as_view()), name="api-service-red-list"),
    path(
        "services/<str:name>/", login_not_required(red_api.ServiceRedDetailApi.as_view()), name="api-service-red-detail"
    ),
]
