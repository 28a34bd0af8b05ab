# Row-level security on every unit-owned table (PostgreSQL only; see lib/rowsecurity.py).
from django.db import migrations

from enseigne.lib.rowsecurity import UnitRowSecurity


class Migration(migrations.Migration):
    dependencies = [("contacts", "0002_initial"), ("network", "0002_row_security_setup")]
    operations = [
        UnitRowSecurity("contacts_contact"),
        UnitRowSecurity("contacts_contacttagging"),
        UnitRowSecurity("contacts_consentevent"),
        UnitRowSecurity("contacts_suppression", shared_rows=True),
        UnitRowSecurity("contacts_contactimport"),
        UnitRowSecurity("contacts_importrejection"),
        UnitRowSecurity("contacts_segment"),
    ]
