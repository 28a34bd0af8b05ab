"""Segment triggers' membership snapshot (``SegmentMember``, row-level security like the
other journeys tables), and the engine's due index on (wake_at, id) so its claim keeps the
id tie-break without a sort (the new index is built before the old one goes)."""

import django.db.models.deletion
from django.db import migrations, models

from enseigne.lib.rowsecurity import UnitRowSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0017_consent_unit_recorded"),
        ("journeys", "0006_step_texts"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="enrollment",
            index=models.Index(
                condition=models.Q(("status", "waiting")),
                fields=["wake_at", "id"],
                name="journeys_enrollment_due_id",
            ),
        ),
        migrations.RemoveIndex(model_name="enrollment", name="journeys_enrollment_due"),
        migrations.CreateModel(
            name="SegmentMember",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("unit_path", models.CharField(max_length=255)),
                ("since", models.DateTimeField()),
                ("trigger_key", models.CharField(max_length=32)),
                (
                    "contact",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contacts.contact",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="journeys.journeyrun",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["contact"], name="journeys_member_contact")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("run", "contact"), name="journeys_member_once"
                    )
                ],
            },
        ),
        UnitRowSecurity("journeys_segmentmember"),
    ]
