# The matching keys become 128-bit uuids (the first 32 hex digits of the 64 they were: the
# same keys, a quarter of the index), the link's person is indexed once instead of twice,
# and persons get time-ordered public ids. What each costs an import: docs/benchmarks.md.
# (0005 is another branch's identity migration; the lead renumbers on merge.)

from django.db import migrations, models

import enseigne.lib.ids


def shorten_keys(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for column in ("email_key", "phone_key"):
            cursor.execute(
                f"UPDATE identity_recordlink SET {column} = substr({column}, 1, 32) "  # noqa: S608
                f"WHERE length({column}) > 32"
            )
    # The review queue's "shared key" alerts name their key: the same key, shortened, so a
    # key HQ was told of is not reported again.
    MatchCandidate = apps.get_model("identity", "MatchCandidate")
    for alert in MatchCandidate.objects.filter(reason="shared_key"):
        key = alert.detail.get("key")
        if isinstance(key, str) and len(key) > 32:
            alert.detail["key"] = key[:32]
            alert.save(update_fields=["detail"])


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0006_policy_thresholds_schedule_modelrun"),
    ]

    operations = [
        migrations.RunPython(shorten_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="recordlink",
            name="email_key",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="recordlink",
            name="phone_key",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="recordlink",
            name="person",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=models.deletion.PROTECT,
                related_name="links",
                to="identity.person",
            ),
        ),
        migrations.AlterField(
            model_name="person",
            name="public_id",
            field=models.UUIDField(
                default=enseigne.lib.ids.time_ordered_uuid, editable=False, unique=True
            ),
        ),
    ]
