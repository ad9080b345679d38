from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class SupportAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the support admin's site (index grouped by task, the address page)."""

    default = False  # named in INSTALLED_APPS; "scorer_fast" itself stays ScorerFastConfig

    default_site = "scorer_fast.admin_site.SupportAdminSite"


class ScorerFastConfig(AppConfig):
    name = "scorer_fast"
    verbose_name = "Passport scorer"

    def ready(self) -> None:
        from django.conf import settings

        from scorer_fast.observability import configure_tracing

        configure_tracing(service_name=settings.OTEL_SERVICE_NAME, otlp_endpoint=settings.OTEL_EXPORTER_OTLP_ENDPOINT)
