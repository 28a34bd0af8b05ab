# Contact.source_import loses its database constraint and index (docs/decisions.md, 2026-11-26).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contacts', '0009_open_tracking'),
    ]

    operations = [
        migrations.AlterField(
            model_name='contact',
            name='source_import',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='contacts.contactimport'),
        ),
    ]
