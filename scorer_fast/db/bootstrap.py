"""Database set-up for a fresh database: the legacy tables from the models, or the real schema from schema.sql."""

from pathlib import Path

from django.apps import apps
from django.core.management import call_command
from django.db import connection


def load_schema_sql(path: Path) -> None:
    """Run a pg_dump --schema-only file (plain SQL, no COPY) on the current database."""
    sql = path.read_text(encoding="utf-8")
    with connection.cursor() as cursor:
        cursor.execute(sql)
        # pg_dump empties search_path for its session; give the connection back its normal one.
        cursor.execute("SET search_path TO public")


def create_missing_tables() -> list[str]:
    """Django's own tables through `migrate`; every unmanaged model's table (with its constraints) if absent."""
    call_command("migrate", interactive=False, verbosity=0)
    existing = set(connection.introspection.table_names())
    models = [model for model in apps.get_app_config("scorer_fast").get_models() if not model._meta.managed]
    created = []
    with connection.schema_editor() as editor:  # FKs are added at the end, so order does not matter
        for model in models:
            if model._meta.db_table not in existing:
                editor.create_model(model)
                created.append(model._meta.db_table)
    return created
