# Row-level security on the brand kit's unit-owned tables (PostgreSQL only).
# Asset rows with unit_path '' are HQ's: visible to every scope, narrowed by selectors.
from django.db import migrations

from enseigne.lib.rowsecurity import UnitRowSecurity


class Migration(migrations.Migration):
    dependencies = [("brand", "0001_initial"), ("network", "0002_row_security_setup")]
    operations = [
        UnitRowSecurity("brand_asset", shared_rows=True),
        UnitRowSecurity("brand_localversion"),
    ]
