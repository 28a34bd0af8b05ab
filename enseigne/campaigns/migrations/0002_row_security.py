# Row-level security on the ledger, relays and budgets, and the SQL hash function the
# audience query uses to match suppressions (PostgreSQL only; SQLite gets a Python one).
from django.db import migrations

from enseigne.lib.hashing import SHA256_FUNCTION_SQL
from enseigne.lib.rowsecurity import UnitRowSecurity


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SHA256_FUNCTION_SQL)


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_initial"), ("network", "0002_row_security_setup")]
    operations = [
        # Not dropped on the way back: contacts 0007's generated columns use it too.
        migrations.RunPython(create_function, migrations.RunPython.noop),
        UnitRowSecurity("campaigns_recipient"),
        UnitRowSecurity("campaigns_relay"),
        UnitRowSecurity("campaigns_budget"),
    ]
