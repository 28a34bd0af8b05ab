from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _link_existing_records(sender, using="default", **kwargs) -> None:  # noqa: ARG001
    """After every migrate: every record has its person (the records that existed before the
    identity app, or written by raw SQL outside the writers). Run here rather than in a data
    migration so that it always runs with the models matching the schema."""
    from django.db import connections

    from enseigne.contacts.models import Contact
    from enseigne.identity.linking import link_unlinked
    from enseigne.identity.models import RecordLink

    connection = connections[using]
    tables = connection.introspection.table_names()
    if RecordLink._meta.db_table not in tables or Contact._meta.db_table not in tables:
        return
    if using != "default":
        return
    link_unlinked()


class IdentityConfig(AppConfig):
    name = "enseigne.identity"
    label = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        post_migrate.connect(
            _link_existing_records, sender=self, dispatch_uid="enseigne_identity_link_existing"
        )
