from huey.contrib.djhuey import db_task

from enseigne.contacts.importer import run_import


@db_task(retries=2, retry_delay=10)
def run_contact_import(import_id: int) -> None:
    run_import(import_id)
