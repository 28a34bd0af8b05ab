# Each contact's address hashes, kept by the database (see Contact.email_hash).

from django.db import migrations, models

from enseigne.lib.hashing import SHA256_FUNCTION_SQL


def create_function(apps, schema_editor):
    # Also created by campaigns 0002; the generated columns need it first.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SHA256_FUNCTION_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0006_import_language"),
    ]

    operations = [
        migrations.RunPython(create_function, migrations.RunPython.noop),
        migrations.AddField(
            model_name="contact",
            name="email_hash",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Func(
                    models.F("email"),
                    function="enseigne_sha256",
                    output_field=models.CharField(max_length=64),
                    template="%(function)s('email:' || %(expressions)s)",
                ),
                output_field=models.CharField(max_length=64),
            ),
        ),
        migrations.AddField(
            model_name="contact",
            name="phone_hash",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Func(
                    models.F("phone"),
                    function="enseigne_sha256",
                    output_field=models.CharField(max_length=64),
                    template="%(function)s('phone:' || %(expressions)s)",
                ),
                output_field=models.CharField(max_length=64),
            ),
        ),
    ]
