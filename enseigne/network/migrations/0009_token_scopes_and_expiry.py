# API tokens gain scopes, an expiry and a revocation date. Tokens made before keep what they
# could do (every write scope) for 90 days from this migration, then must be made again.
import datetime

from django.db import migrations, models
from django.utils import timezone

WRITE_SCOPES = ["contacts", "conversions", "campaigns"]


def existing_tokens_keep_their_rights(apps, schema_editor):
    ApiToken = apps.get_model("network", "ApiToken")
    ApiToken.objects.update(
        scopes=WRITE_SCOPES, expires_at=timezone.now() + datetime.timedelta(days=90)
    )


class Migration(migrations.Migration):
    dependencies = [("network", "0008_audit_row_security")]

    operations = [
        migrations.AlterModelOptions(name="apitoken", options={"ordering": ["-created_at", "-id"]}),
        migrations.AddField(
            model_name="apitoken", name="scopes", field=models.JSONField(default=list)
        ),
        migrations.AddField(
            model_name="apitoken", name="expires_at", field=models.DateTimeField(null=True)
        ),
        migrations.AddField(
            model_name="apitoken",
            name="revoked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(existing_tokens_keep_their_rights, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken", name="expires_at", field=models.DateTimeField()
        ),
    ]
