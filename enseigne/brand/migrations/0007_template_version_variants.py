# Head office's zone variants per persona, kept in each template version (brand.variants).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("brand", "0006_product_sku")]

    operations = [
        migrations.AddField("templateversion", "variants", models.JSONField(blank=True, default=dict))
    ]
