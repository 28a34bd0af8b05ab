# Row-level security on templates (PostgreSQL only), on the path they are shared with: HQ's
# reach every unit below that path (read only), a unit's free frame stays the unit's own.
from django.db import migrations

from enseigne.lib.rowsecurity import UnitRowSecurity


class Migration(migrations.Migration):
    dependencies = [("brand", "0004_template_is_free"), ("network", "0008_audit_row_security")]
    operations = [UnitRowSecurity("brand_template", column="shared_path", inherited_rows=True)]
