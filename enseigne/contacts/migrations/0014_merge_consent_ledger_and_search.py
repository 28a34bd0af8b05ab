# Joins two branches of contacts' migrations: the append-only consent ledger (0011) and the
# import and search changes (0012, 0013). Nothing to do.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0011_consent_ledger_append_only"),
        ("contacts", "0013_search_folded"),
    ]
    operations = []
