# The RLS helper function and the application role's grants (PostgreSQL only).
from django.db import migrations

from enseigne.lib.rowsecurity import CreateScopeFunction


class Migration(migrations.Migration):
    dependencies = [("network", "0001_initial")]
    operations = [CreateScopeFunction()]
