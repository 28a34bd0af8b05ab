# Row-level security on campaigns (PostgreSQL only). A campaign belongs to its owner's path:
# a local one to its unit, a national one to the network root. Units read HQ's national
# campaigns (they relay them; selectors narrow to the targeted units) but write only their own.
from django.db import migrations

from enseigne.lib.rowsecurity import UnitRowSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0010_approved_content_snapshot"),
        ("network", "0008_audit_row_security"),
    ]
    operations = [UnitRowSecurity("campaigns_campaign", column="owner_path", inherited_rows=True)]
