from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import connection

from scorer_fast.db.bootstrap import create_missing_tables, load_schema_sql


class Command(BaseCommand):
    help = "Create the scorer tables in an empty database (from the models, or from --schema-sql). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--schema-sql", type=Path, help="load this pg_dump schema file first (only into an empty DB)"
        )

    def handle(self, *args, schema_sql: Path | None = None, **options):
        if schema_sql and "registry_score" not in connection.introspection.table_names():
            load_schema_sql(schema_sql)
            self.stdout.write(f"loaded {schema_sql}")
        created = create_missing_tables()
        self.stdout.write(f"created {len(created)} tables" + (f": {', '.join(created)}" if created else ""))
