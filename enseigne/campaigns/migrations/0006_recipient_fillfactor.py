# Each ledger row is updated three times while it is sent (leased, attempted, sent). With
# the default fillfactor of 100 a bulk-inserted page has no room for the new version, so
# every update also rewrites the row's entry in all six indexes. Leaving half of each page
# free lets PostgreSQL keep the lease and attempt updates on the page ("HOT" updates,
# which touch no index). PostgreSQL only; SQLite has no such setting.
from django.db import migrations


def set_fillfactor(value):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE campaigns_recipient SET (fillfactor = {int(value)})")
    return apply


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0005_feedback_and_pause_reason")]
    operations = [migrations.RunPython(set_fillfactor(50), set_fillfactor(100))]
