from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _event_partitions(sender, using="default", **kwargs) -> None:  # noqa: ARG001
    """After every migrate: the events table has its partitions from last month to three months ahead."""
    import datetime as dt

    from django.db import connections

    from enseigne.delivery import partitions

    connection = connections[using]
    if (
        connection.vendor == "postgresql"
        and partitions.TABLE in connection.introspection.table_names()
    ):
        partitions.ensure_around(dt.date.today(), connection=connection)


class DeliveryConfig(AppConfig):
    name = "enseigne.delivery"
    label = "delivery"
    verbose_name = "Delivery"

    def ready(self) -> None:
        post_migrate.connect(
            _event_partitions, sender=self, dispatch_uid="enseigne_event_partitions"
        )
