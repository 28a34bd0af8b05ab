from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from enseigne.contacts.importer import import_give_up, run_import
from enseigne.contacts.models import ContactImport
from enseigne.lib.imports import import_run_task, import_sweep


@db_task(retries=2, retry_delay=10, context=True)
def run_contact_import(import_id: int, task=None) -> None:
    """Run an import; a retry, or the sweep after a dead worker, resumes after the last
    committed batch."""
    import_run_task(
        ContactImport,
        import_id,
        run_import,
        import_give_up,
        last_attempt=task is None or not task.retries,
    )


@db_periodic_task(crontab(minute="*"))
def contact_imports_sweep() -> None:
    """Every minute: queue again the contact imports whose worker died."""
    import_sweep(ContactImport, run_contact_import, import_give_up)
