# Row-level security on the captured outbox and on bounce reports (PostgreSQL only).
from django.db import migrations

from enseigne.lib.rowsecurity import UnitRowSecurity


class Migration(migrations.Migration):
    dependencies = [("delivery", "0001_initial"), ("network", "0002_row_security_setup")]
    operations = [
        UnitRowSecurity("delivery_outboxmessage"),
        UnitRowSecurity("delivery_bounce"),
    ]
