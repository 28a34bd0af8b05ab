# The audit log is unit-owned (each line carries the node it concerns) and append-only:
# row-level security on node_path, and the app role may only INSERT and SELECT it.
# Lines with node_path '' (users, roles, unit variables) are HQ's: only a scope holding the
# network root sees them. Also the helpers later policies use (PostgreSQL only).
from django.db import migrations

from enseigne.lib.rowsecurity import AppendOnlyGrants, CreateScopePrefixesFunction, UnitRowSecurity


class Migration(migrations.Migration):
    dependencies = [("network", "0007_unit_time_zone_follows_network")]
    operations = [
        CreateScopePrefixesFunction(),
        UnitRowSecurity("network_auditevent", column="node_path", root_rows=True),
        AppendOnlyGrants("network_auditevent"),
    ]
