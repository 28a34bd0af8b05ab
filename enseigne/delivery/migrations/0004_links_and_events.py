# Links found in messages, and the events log (partitioned by month on PostgreSQL, see
# enseigne/delivery/partitions.py: Django cannot declare a partitioned table, so the
# model's table is replaced by one written by hand).
import django.db.models.deletion
from django.db import migrations, models

from enseigne.delivery import partitions
from enseigne.lib.rowsecurity import UnitRowSecurity


def partition_events(apps, schema_editor):
    """On PostgreSQL, the plain table CreateModel made becomes a partitioned one (still empty)."""
    if schema_editor.connection.vendor == "postgresql":
        # CreateModel's indexes wait in deferred_sql until the end of the migration: drop them with it.
        schema_editor.deferred_sql = [sql for sql in schema_editor.deferred_sql
                                      if not (hasattr(sql, "references_table") and sql.references_table(partitions.TABLE))]
        schema_editor.execute(f"DROP TABLE {partitions.TABLE}")
        partitions.create_table(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0007_recipient_lease_only_pending'),
        ('delivery', '0003_bounce_reference'),
        ('network', '0005_free_campaigns'),
    ]

    operations = [
        migrations.CreateModel(
            name='Event',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('occurred_at', models.DateTimeField()),
                ('kind', models.PositiveSmallIntegerField(choices=[(1, 'Sent'), (2, 'Delivered'), (3, 'Opened'), (4, 'Clicked'), (5, 'Unsubscribed'), (6, 'Bounced'), (7, 'Complained'), (8, 'Converted')])),
                ('channel', models.CharField(blank=True, choices=[('email', 'Email'), ('sms', 'SMS')], max_length=8)),
                ('campaign_id', models.BigIntegerField(blank=True, null=True)),
                ('unit_id', models.BigIntegerField(blank=True, null=True)),
                ('unit_path', models.CharField(max_length=255)),
                ('recipient_id', models.BigIntegerField(blank=True, null=True)),
                ('link_id', models.BigIntegerField(blank=True, null=True)),
                ('machine', models.BooleanField(default=False)),
                ('amount', models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True)),
            ],
            options={
                'indexes': [models.Index(fields=['campaign_id', 'kind', 'recipient_id'], name='event_campaign_kind'), models.Index(fields=['occurred_at'], name='event_occurred')],
            },
        ),
        migrations.RunPython(partition_events, migrations.RunPython.noop),
        migrations.CreateModel(
            name='Link',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('unit_path', models.CharField(max_length=255)),
                ('url', models.TextField()),
                ('url_hash', models.CharField(max_length=32)),
                ('position', models.PositiveSmallIntegerField(default=0)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('campaign', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='campaigns.campaign')),
                ('unit', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='network.orgnode')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('campaign', 'unit', 'url_hash'), name='link_unique')],
            },
        ),
        UnitRowSecurity("delivery_link"),
    ]
