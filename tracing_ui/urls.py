from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from traces.api import ingest

urlpatterns = [
    path("v1/traces", ingest.otlp_traces, name="otlp-traces"),
    path("api/v2/spans", ingest.zipkin_spans, name="zipkin-spans"),
    path("api/v1/import/jaeger", ingest.jaeger_import, name="jaeger-import"),
    # API views authenticate themselves (session or API token) and answer 401/403 as JSON, never a redirect.
    path("api/v1/", include("traces.api.trace_urls")),
    path("api/v1/", include("traces.api.urls")),
    path("api/v1/", include("dashboards.urls_red")),
    path("api/v1/", include("dashboards.urls_api")),
    path("api/schema/", login_not_required(SpectacularAPIView.as_view()), name="api-schema"),
    # The split view serves Swagger UI's init code as a script file: the CSP allows no inline script.
    path("api/docs/", login_not_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("login/", login_not_required(auth_views.LoginView.as_view()), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("img/favicon.svg"), permanent=True))),
    path("", include("dashboards.urls")),
    # Trace, compare and upload pages; before traces.urls so /traces/compare/ and /traces/upload/ are not trace IDs.
    path("", include("traces.page_urls")),
    path("", include("traces.urls")),
]
