"""URLs of the dashboards pages (the JSON API lives in urls_api.py and urls_red.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("services/", views.service_list, name="service-list"),
    # Before services/<str:name>/, which would take "map" for a service name.
    path("services/map/", views.service_map, name="service-map"),
    path("services/<str:name>/", views.service_detail, name="service-detail"),
]
