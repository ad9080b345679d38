"""Django's users and groups, except that a row other tables still point at cannot be deleted: those foreign keys
(account_account.user_id and the original's own tables) are invisible to Django's delete collector, so the delete
would fail at commit with a 500."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import connection
from django.db.models import Model
from django.http import HttpRequest
from psycopg import sql

# Tables whose rows Django's collector removes itself (many-to-many links and the admin log).
_DJANGO_HANDLED = {"auth_user_groups", "auth_user_user_permissions", "auth_group_permissions", "django_admin_log"}


def referencing_columns(table: str) -> list[tuple[str, str]]:
    """(table, column) of every single-column foreign key to `table` that Django does not clean up itself."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.conrelid::regclass::text, a.attname
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
            WHERE c.contype = 'f' AND c.confrelid = %s::regclass AND cardinality(c.conkey) = 1
            ORDER BY 1, 2
            """,
            [table],
        )
        return [(name, column) for name, column in cursor.fetchall() if name not in _DJANGO_HANDLED]


def referenced_by(obj: Model) -> list[str]:
    """The tables that still hold a row pointing at obj (one query)."""
    columns = referencing_columns(obj._meta.db_table)
    if not columns:
        return []
    probes = sql.SQL(", ").join(
        sql.SQL("EXISTS (SELECT 1 FROM {} WHERE {} = %(pk)s)").format(
            sql.Identifier(*table.split(".")), sql.Identifier(column)
        )
        for table, column in columns
    )
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT {}").format(probes).as_string(cursor.connection), {"pk": obj.pk})
        found = cursor.fetchone()
    return [table for (table, _column), exists in zip(columns, found, strict=True) if exists]


class GuardedDeleteMixin:
    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)  # type: ignore[misc]
        return allowed and (obj is None or not referenced_by(obj))


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class GuardedUserAdmin(GuardedDeleteMixin, UserAdmin):
    pass


@admin.register(Group)
class GuardedGroupAdmin(GuardedDeleteMixin, GroupAdmin):
    pass
