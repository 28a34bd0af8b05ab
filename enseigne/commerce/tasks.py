from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task


@db_task(retries=2, retry_delay=10, context=True)
def run_order_import(import_id: int, task=None) -> None:
    """Run an orders import (or its dry run); a retry, or the sweep after a dead worker,
    goes on after the last committed batch (its orders are not recorded twice)."""
    from enseigne.commerce.importer import order_import_give_up, order_import_run
    from enseigne.commerce.models import OrderImport
    from enseigne.lib.imports import import_run_task

    import_run_task(
        OrderImport,
        import_id,
        order_import_run,
        order_import_give_up,
        last_attempt=task is None or not task.retries,
    )


@db_task(retries=2, retry_delay=10, context=True)
def run_catalogue_import(import_id: int, task=None) -> None:
    """Run a catalogue import (or its dry run), as ``run_order_import``."""
    from enseigne.commerce.catalogue_importer import catalogue_import_give_up, catalogue_import_run
    from enseigne.commerce.models import CatalogueImport
    from enseigne.lib.imports import import_run_task

    import_run_task(
        CatalogueImport,
        import_id,
        catalogue_import_run,
        catalogue_import_give_up,
        last_attempt=task is None or not task.retries,
    )


@db_periodic_task(crontab(minute="*"))
def commerce_imports_sweep() -> None:
    """Every minute: queue again the sales and catalogue imports whose worker died."""
    from enseigne.commerce.catalogue_importer import catalogue_import_give_up
    from enseigne.commerce.importer import order_import_give_up
    from enseigne.commerce.models import CatalogueImport, OrderImport
    from enseigne.lib.imports import import_sweep

    import_sweep(OrderImport, run_order_import, order_import_give_up)
    import_sweep(CatalogueImport, run_catalogue_import, catalogue_import_give_up)


@db_task(retries=1, retry_delay=30)
def rebuild_category_revenue() -> None:
    """Recompute the stores' monthly revenue per category from every order (after orders were
    loaded outside the writers, e.g. the demo's)."""
    from django.db import transaction

    from enseigne.commerce.revenue import rebuild

    with transaction.atomic():
        rebuild()
