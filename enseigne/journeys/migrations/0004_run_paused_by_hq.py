"""A run paused by HQ's network-wide pause is told apart from one a store paused itself."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0003_trigger_progress"),
    ]

    operations = [
        migrations.AddField(
            model_name="journeyrun",
            name="paused_by_hq",
            field=models.BooleanField(default=False),
        ),
    ]
