# What an import writes for each new customer, made narrower (docs/benchmarks.md, "Person
# matching at write time", fourth pass): a person's public id is derived from its row id
# (identity.public_ids) instead of stored with a unique index, and the link's ``linked_by``
# keeps its on_delete in Django but no database constraint (its check was queued for every
# inserted link, though an import never sets it). Existing persons' public ids change.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0008_hash_key_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveField(
            model_name="person",
            name="public_id",
        ),
        migrations.AlterField(
            model_name="recordlink",
            name="linked_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
