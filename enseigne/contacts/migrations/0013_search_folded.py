# Accent- and case-insensitive search of names: enseigne_fold() (unaccent + lower) and
# expression indexes on PostgreSQL, so "dupre" finds "Dupré" with an index scan. SQLite gets
# the same function from Python on each connection (enseigne.lib.apps) and no index.

from django.db import migrations

from enseigne.lib.folding import FOLD_FUNCTION_SQL

INDEXES = (
    "CREATE INDEX IF NOT EXISTS contact_last_name_folded "
    "ON contacts_contact (enseigne_fold(last_name) text_pattern_ops)",
    "CREATE INDEX IF NOT EXISTS contact_first_name_folded "
    "ON contacts_contact (enseigne_fold(first_name) text_pattern_ops)",
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FOLD_FUNCTION_SQL)
        for statement in INDEXES:
            schema_editor.execute(statement)
        # Under row-level security the indexes serve a search only if the function is
        # LEAKPROOF, which only a superuser may declare (README, "Search").
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if cursor.fetchone()[0]:
                cursor.execute("ALTER FUNCTION enseigne_fold(text) LEAKPROOF")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS contact_last_name_folded")
        schema_editor.execute("DROP INDEX IF EXISTS contact_first_name_folded")


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0012_import_rejection_kind"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
