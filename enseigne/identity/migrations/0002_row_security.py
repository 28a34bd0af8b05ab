# Row-level security on identity's unit-owned tables (PostgreSQL only; see lib/rowsecurity.py).
# Person and IdentityPolicy hold no personal data and no unit's rows: no policy.
from django.db import migrations

from enseigne.lib.rowsecurity import UnitRowSecurity


class Migration(migrations.Migration):
    dependencies = [("identity", "0001_initial"), ("network", "0009_token_scopes_and_expiry")]
    operations = [
        # A store must not learn that another store holds the same address (separate
        # controllers): links are read by HQ and by the system only; a store's pages get
        # what its mode allows through identity's selectors.
        UnitRowSecurity("identity_recordlink", hq_only=True),
        # HQ's review queue, its merge/split history and its "kept apart" pairs: '' rows
        # only a scope holding the network root reads or writes.
        UnitRowSecurity("identity_matchcandidate", root_rows=True),
        UnitRowSecurity("identity_identitychange", root_rows=True),
        UnitRowSecurity("identity_keptapart", root_rows=True),
    ]
