# Order ids are unique per unit, not across the network (docs/decisions.md).
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]
    operations = [
        migrations.RemoveConstraint(model_name="conversion", name="conversion_order_unique"),
        migrations.AddConstraint(
            model_name="conversion",
            constraint=models.UniqueConstraint(
                fields=["unit", "order_id"], name="conversion_unit_order_unique"
            ),
        ),
    ]
