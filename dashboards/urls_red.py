from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import map_api, red_api

urlpatterns = [
    path("service-map/", login_not_required(map_api.ServiceMapApi.as_view()), name="api-service-map"),
    path("service-map/edge/", login_not_required(map_api.ServiceMapEdgeApi.as_view()), name="api-service-map-edge"),
    path("services/", login_not_required(red_api.ServiceRedListApi.as_view()), name="api-service-red-list"),
    path(
        "services/<str:name>/", login_not_required(red_api.ServiceRedDetailApi.as_view()), name="api-service-red-detail"
    ),
]
