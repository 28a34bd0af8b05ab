from huey.contrib.djhuey import db_task

from enseigne.contacts.importer import import_give_up, run_import


@db_task(retries=2, retry_delay=10, context=True)
def run_contact_import(import_id: int, task=None) -> None:
    """Run an import; a retry resumes after the last committed batch."""
    try:
        run_import(import_id)
    except Exception:
        if task is None or not task.retries:  # the last attempt: say so rather than hang
            import_give_up(import_id)
        raise
