from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "traces"
    verbose_name = "Traces"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI description of token authentication)
