from huey.contrib.djhuey import db_task


@db_task()
def run_order_import(import_id: int) -> None:
    """Run an orders import (or its dry run). No retry: a run claims its import once, and
    importing the file again is the safe way on (its orders are duplicates)."""
    from enseigne.commerce.importer import order_import_give_up, order_import_run

    try:
        order_import_run(import_id)
    except Exception:
        order_import_give_up(import_id)
        raise
