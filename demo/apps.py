from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Development only: settings install this app (and its `seed_demo` command) only with SCORER_ENV=development."""

    name = "demo"
    verbose_name = "Demo data (development only)"
