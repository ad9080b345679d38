"""The models against the database the suite runs on: the real schema.sql when SCORER_SCHEMA_SQL is set
(scripts/test runs that pass too), so a model that disagrees with production fails here."""

import re
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db import connection, models

pytestmark = pytest.mark.django_db
UNMANAGED = [model for model in apps.get_app_config("scorer_fast").get_models() if not model._meta.managed]
_unique = count(1)


def table_columns(table: str) -> dict[str, tuple[str, bool, bool]]:
    """column → (type, not null, has default)"""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.atthasdef OR a.attidentity <> ''
            FROM pg_attribute a
            WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
            """,
            [table],
        )
        return {name: (kind, not_null, has_default) for name, kind, not_null, has_default in cursor.fetchall()}


def unique_column_sets(table: str) -> set[tuple[tuple[str, ...], bool]]:
    """Unique indexes as (sorted columns, partial?)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT array_agg(a.attname ORDER BY a.attname), i.indpred IS NOT NULL
            FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = %s::regclass AND i.indisunique AND NOT i.indisprimary
            GROUP BY i.indexrelid, i.indpred
            """,
            [table],
        )
        return {(tuple(columns), partial) for columns, partial in cursor.fetchall()}


def normalized(db_type: str) -> str:
    db_type = db_type.replace("varchar(", "character varying(").replace("serial", "integer")
    return re.sub(r",\s+", ",", db_type)


@pytest.mark.parametrize("model", UNMANAGED, ids=lambda m: m._meta.db_table)
def test_every_field_matches_its_column(model):
    columns = table_columns(model._meta.db_table)
    for field in model._meta.concrete_fields:
        assert field.column in columns, f"{model._meta.db_table}.{field.column} missing"
        kind, not_null, _default = columns[field.column]
        expected = field.rel_db_type(connection) if field.is_relation else field.db_type(connection)
        if field.is_relation:
            expected = field.target_field.rel_db_type(connection)
        assert normalized(expected) == kind, f"{model._meta.db_table}.{field.column}: {expected} vs {kind}"
        assert field.null != not_null or field.primary_key, f"{model._meta.db_table}.{field.column} nullability"


@pytest.mark.parametrize("model", UNMANAGED, ids=lambda m: m._meta.db_table)
def test_every_required_column_is_mapped(model):
    mapped = {field.column for field in model._meta.concrete_fields}
    required = {
        name
        for name, (_kind, not_null, has_default) in table_columns(model._meta.db_table).items()
        if not_null and not has_default
    }
    assert required <= mapped, f"{model._meta.db_table}: unmapped NOT NULL columns {required - mapped}"


@pytest.mark.parametrize("model", UNMANAGED, ids=lambda m: m._meta.db_table)
def test_declared_unique_constraints_exist(model):
    actual = unique_column_sets(model._meta.db_table)
    declared = set()
    for field in model._meta.concrete_fields:
        if field.unique and not field.primary_key:
            declared.add(((field.column,), False))
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            columns = tuple(sorted(model._meta.get_field(name).column for name in constraint.fields))
            declared.add((columns, constraint.condition is not None))
    assert declared <= actual, f"{model._meta.db_table}: {declared - actual} not in the database"


def sample_value(field):
    if isinstance(field, models.ForeignKey | models.OneToOneField):
        related = field.related_model
        return User.objects.create(username=f"u{next(_unique)}") if related is User else make_row(related)
    if isinstance(field, models.JSONField):
        return {"k": [1, 2.5, "v"], "n": None}
    if isinstance(field, models.DecimalField):
        return Decimal("1.2345")
    if isinstance(field, models.DateTimeField):
        return datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC)
    if isinstance(field, models.BooleanField):
        return True
    if isinstance(field, models.IntegerField):
        return next(_unique)
    if isinstance(field, models.CharField | models.TextField):
        return f"v{next(_unique)}"[: field.max_length or 50]
    raise AssertionError(f"no sample for {field}")


def make_row(model):
    values = {}
    for field in model._meta.concrete_fields:
        if field.auto_created or (field.primary_key and not isinstance(field, models.CharField | models.OneToOneField)):
            continue
        values[field.name] = sample_value(field)
    return model.objects.create(**values)


@pytest.mark.parametrize("model", UNMANAGED, ids=lambda m: m._meta.db_table)
def test_every_model_round_trips_a_row(model):
    row = make_row(model)
    reloaded = model.objects.get(pk=row.pk)
    for field in model._meta.concrete_fields:
        assert getattr(reloaded, field.attname) == getattr(row, field.attname), field.name
