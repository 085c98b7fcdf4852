"""The one settings module. Works with zero configuration; everything else comes from the environment.

Every variable is documented in `.env.example`. When DATABASE_URL / REDIS_URL are unset, the URLs of the
project-local embedded services (started by `make run` / `make test`, see tracing_ui/devservices.py) are used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def envint(name: str, default: str) -> int:
    return int(os.getenv(name, default))


def envsecret(name: str, default: str) -> str:
    """Read NAME, or the file named by NAME_FILE (Docker / Kubernetes secrets)."""
    path = os.getenv(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.getenv(name, default)


def _embedded_service_urls() -> dict[str, str]:
    env_file = Path(os.getenv("TRACING_UI_DATA_DIR", BASE_DIR / ".data")) / "services.env"
    if not env_file.exists():
        return {}
    pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


_embedded = _embedded_service_urls()
DATABASE_URL = (
    os.getenv("DATABASE_URL") or _embedded.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:54329/tracing_ui"
)
REDIS_URL = os.getenv("REDIS_URL") or _embedded.get("REDIS_URL") or "redis://127.0.0.1:63790/0"

SECRET_KEY = envsecret("SECRET_KEY", "dev-only-insecure-key-set-SECRET_KEY-in-production")
DEBUG = envbool("DEBUG", "1")
ALLOWED_HOSTS = [h.strip() for h in os.getenv("ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.getenv("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
SITE_ROOT = os.getenv("SITE_ROOT", f"http://127.0.0.1:{os.getenv('PORT', '8000')}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Project apps in data-flow order: each imports only the ones above it (import-linter holds it).
    "common",
    "traces",
    "dashboards",
    "alerting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tracing_ui.urls"
WSGI_APPLICATION = "tracing_ui.wsgi.application"
ASGI_APPLICATION = "tracing_ui.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", "300"), conn_health_checks=True
    )
}
DATABASES["default"].setdefault("TEST", {})["NAME"] = os.getenv("TEST_DATABASE_NAME", "test_tracing_ui")
if not envbool("DB_JIT", "0"):
    # PostgreSQL's JIT compiles any query whose estimate passes jit_above_cost; for our short keyed queries that
    # compile took longer than the query: pairing 1,000 traces spent 0.47 s in JIT and 0.016 s executing.
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    _db_options["options"] = f"{_db_options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Django 6 Content Security Policy: no inline scripts anywhere, every script is a same-origin module.
from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],  # Plotly sets style attributes on the SVG it draws.
    "img-src": [CSP.SELF, "data:", "blob:"],
    "connect-src": [CSP.SELF],
    "worker-src": [CSP.SELF, "blob:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "traces.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "traces.api.errors.json_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tracing-ui API",
    "DESCRIPTION": "OpenTelemetry trace ingest (OTLP/HTTP, Zipkin v2, Jaeger JSON) and the read API for traces.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "traces.schema.ingest_paths"],
}

# Celery: Redis is the broker in development as in production.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # Merge the per-batch rollup deltas written at ingest into minute and hour rollups.
    "rollups-compact": {
        "task": "dashboards.tasks.rollups_compact_task",
        "schedule": envint("ROLLUP_COMPACT_SECONDS", "10"),
        "options": {"expires": 30},
    },
    # Keep partitions ahead of incoming spans and drop expired ones (retention by DROP, never DELETE).
    "span-partitions-maintain": {
        "task": "traces.tasks.span_partitions_maintain_task",
        "schedule": envint("PARTITION_MAINTENANCE_SECONDS", "3600"),
        "options": {"expires": 3000},
    },
    # Forget how traces were paired once their spans are past retention (no late span can arrive for them).
    "edge-states-expire": {
        "task": "dashboards.tasks.edge_states_expire_task",
        "schedule": envint("PARTITION_MAINTENANCE_SECONDS", "3600"),
        "options": {"expires": 3000},
    },
}

# Trace store.
TRACE_RETENTION_DAYS = envint("TRACE_RETENTION_DAYS", "7")
TRACE_PARTITIONS_AHEAD_DAYS = envint("TRACE_PARTITIONS_AHEAD_DAYS", "3")

# Ingest.
INGEST_MAX_BODY_BYTES = envint("INGEST_MAX_BODY_BYTES", str(64 * 1024 * 1024))
# Concurrent ingest transactions allowed at once across all web processes; above it clients get 429.
INGEST_MAX_CONCURRENCY = envint("INGEST_MAX_CONCURRENCY", "16")
INGEST_RETRY_AFTER_SECONDS = envint("INGEST_RETRY_AFTER_SECONDS", "5")
# A store that takes longer than this to take one batch answers 503 instead of holding the client.
INGEST_STATEMENT_TIMEOUT_MS = envint("INGEST_STATEMENT_TIMEOUT_MS", "30000")
# Spans starting further than this in the future are rejected (partial success); old spans are kept.
INGEST_MAX_CLOCK_DRIFT_DAYS = envint("INGEST_MAX_CLOCK_DRIFT_DAYS", "2")
# Raw request bodies are handled by the ingest views themselves (limit enforced after decompression).
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", str(16 * 1024 * 1024))

# Roll spans up into per-minute aggregates as they are stored (RED metrics, service map, SLOs read them).
ROLLUPS_ENABLED = envbool("ROLLUPS_ENABLED", "1")
ROLLUP_COMPACT_SECONDS = envint("ROLLUP_COMPACT_SECONDS", "10")
# A trace's client and server spans come from different processes and batches: its calls are paired into the
# service map once no new span has arrived for this long (later spans re-pair it exactly).
EDGE_IDLE_SECONDS = envint("EDGE_IDLE_SECONDS", "30")

# Trace search gives up (503, "narrow your search") after this long rather than hold a connection.
SEARCH_STATEMENT_TIMEOUT_MS = envint("SEARCH_STATEMENT_TIMEOUT_MS", "10000")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
