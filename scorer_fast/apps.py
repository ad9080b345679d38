from django.apps import AppConfig


class ScorerFastConfig(AppConfig):
    name = "scorer_fast"
    verbose_name = "Passport scorer (existing tables)"

    def ready(self) -> None:
        from django.conf import settings

        from scorer_fast.observability import configure_tracing

        configure_tracing(service_name=settings.OTEL_SERVICE_NAME, otlp_endpoint=settings.OTEL_EXPORTER_OTLP_ENDPOINT)
