from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("contacts", "0010_source_import_unconstrained")]

    operations = [
        migrations.AddField(
            model_name="importrejection",
            name="kind",
            field=models.CharField(
                choices=[
                    ("refused", "Row not imported"),
                    ("skipped", "Value left out"),
                    ("duplicate", "Possible duplicate"),
                ],
                default="refused",
                max_length=10,
            ),
        ),
    ]
