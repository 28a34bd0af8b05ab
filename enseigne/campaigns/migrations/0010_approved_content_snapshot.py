import django.db.models.deletion
from django.db import migrations, models

from enseigne.lib.rowsecurity import ALL, db_scope

LIVE = ("approved", "scheduled", "sending", "paused")


def snapshot_live_campaigns(apps, schema_editor):
    """Campaigns approved before snapshots existed keep what their local versions hold today
    (what they would have sent), so that from now on that is what they send."""
    Campaign = apps.get_model("campaigns", "Campaign")
    Relay = apps.get_model("campaigns", "Relay")
    with db_scope(ALL):
        for campaign in Campaign.objects.filter(status__in=LIVE).select_related(
            "template", "local_version"
        ):
            local = campaign.local_version
            campaign.approved_version_id = (
                local.version_id if local else campaign.template.current_id
            )
            campaign.approved_values = dict(local.values) if local else {}
            campaign.save(update_fields=["approved_version", "approved_values"])
        relays = Relay.objects.filter(
            campaign__status__in=LIVE, status="relayed", local_version__isnull=False
        ).select_related("local_version")
        for relay in relays:
            relay.approved_version_id = relay.local_version.version_id
            relay.approved_values = dict(relay.local_version.values)
            relay.save(update_fields=["approved_version", "approved_values"])


class Migration(migrations.Migration):
    dependencies = [
        ("brand", "0004_template_is_free"),
        ("campaigns", "0009_sms_stop_scope"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="approved_values",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="campaign",
            name="approved_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="brand.templateversion",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="content_problems",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="relay",
            name="approved_values",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="relay",
            name="approved_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="brand.templateversion",
            ),
        ),
        migrations.AlterField(
            model_name="relay",
            name="local_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="relays",
                to="brand.localversion",
            ),
        ),
        migrations.RunPython(snapshot_live_campaigns, migrations.RunPython.noop),
    ]
