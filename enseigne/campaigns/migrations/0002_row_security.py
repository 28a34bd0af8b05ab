# Row-level security on the ledger, relays and budgets, and the SQL hash function the
# audience query uses to match suppressions (PostgreSQL only; SQLite gets a Python one).
from django.db import migrations

from enseigne.lib.rowsecurity import UnitRowSecurity

SHA256 = """
CREATE OR REPLACE FUNCTION enseigne_sha256(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') $$
"""


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SHA256)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS enseigne_sha256(text)")


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_initial"), ("network", "0002_row_security_setup")]
    operations = [
        migrations.RunPython(create_function, drop_function),
        UnitRowSecurity("campaigns_recipient"),
        UnitRowSecurity("campaigns_relay"),
        UnitRowSecurity("campaigns_budget"),
    ]
