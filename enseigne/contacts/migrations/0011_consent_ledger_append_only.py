# The consent ledger is append-only in the database too: the app role may INSERT and SELECT
# it, never UPDATE or DELETE; erasure goes through enseigne_erase_consent_events(), an
# owner-role function (docs/decisions.md, "Append-only ledgers"). The contact foreign key no
# longer cascades in Django (a cascade would be a DELETE the role may not run).
import django.db.models.deletion
from django.db import migrations, models

from enseigne.lib.rowsecurity import AppendOnlyGrants, CreateEraseConsentFunction


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0010_source_import_unconstrained"),
        ("network", "0008_audit_row_security"),
    ]
    operations = [
        migrations.AlterField(
            model_name="consentevent",
            name="contact",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="consent_events",
                to="contacts.contact",
            ),
        ),
        AppendOnlyGrants("contacts_consentevent"),
        CreateEraseConsentFunction(),
    ]
