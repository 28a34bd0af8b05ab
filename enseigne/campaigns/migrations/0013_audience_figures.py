# Audience figures kept with the campaign (campaigns/figures.py), and the index that answers
# what a unit spent in a budget's period.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0011_campaign_row_security'),
        ('contacts', '0010_source_import_unconstrained'),
        ('network', '0007_unit_time_zone_follows_network'),
    ]

    operations = [
        migrations.CreateModel(
            name='AudienceFigures',
            fields=[
                ('campaign', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='audience_figures', serialize=False, to='campaigns.campaign')),
                ('figures', models.JSONField(blank=True, default=dict)),
                ('inputs', models.CharField(blank=True, max_length=64)),
                ('for_date', models.DateTimeField(blank=True, null=True)),
                ('computed_at', models.DateTimeField(blank=True, null=True)),
                ('requested_at', models.DateTimeField(blank=True, null=True)),
                ('queued_at', models.DateTimeField(blank=True, null=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('error', models.CharField(blank=True, max_length=300)),
            ],
        ),
        migrations.AddIndex(
            model_name='recipient',
            index=models.Index(condition=models.Q(('status', 'sent')), fields=['unit', 'sent_at'], name='recipient_unit_sent'),
        ),
    ]
