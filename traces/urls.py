from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("traces/", views.trace_search_page, name="trace-search"),
]
