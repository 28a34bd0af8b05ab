# Every existing record joins its person, as a record written today would. This runs the
# application's own matching (identity.linking), not a copy frozen here: the rule is one.
from django.db import migrations


def link_existing(apps, schema_editor):  # noqa: ARG001
    from enseigne.identity.linking import link_unlinked

    link_unlinked()


class Migration(migrations.Migration):
    dependencies = [("identity", "0002_row_security"), ("contacts", "0015_contact_recent")]
    operations = [migrations.RunPython(link_existing, migrations.RunPython.noop)]
