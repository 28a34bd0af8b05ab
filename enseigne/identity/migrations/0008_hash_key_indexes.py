# The link's two key indexes become hash indexes on PostgreSQL (identity.models.KeyIndex):
# cheaper to keep up on each insert and to probe (docs/benchmarks.md, "Person matching at
# write time"). On SQLite they stay B-trees.

import enseigne.identity.models
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0007_smaller_keys"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="recordlink",
            name="recordlink_email_key",
        ),
        migrations.RemoveIndex(
            model_name="recordlink",
            name="recordlink_phone_key",
        ),
        migrations.AddIndex(
            model_name="recordlink",
            index=enseigne.identity.models.KeyIndex(
                condition=models.Q(("email_key__isnull", False)),
                fields=["email_key"],
                name="recordlink_email_hash",
            ),
        ),
        migrations.AddIndex(
            model_name="recordlink",
            index=enseigne.identity.models.KeyIndex(
                condition=models.Q(("phone_key__isnull", False)),
                fields=["phone_key"],
                name="recordlink_phone_hash",
            ),
        ),
    ]
