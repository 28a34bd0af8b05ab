"""What every CSV import (contacts, orders, the catalogue) does the same way: its upload page,
its lease on the worker that runs it, its progress, the columns it left out, and its
row-by-row report grouped by kind, whose reasons each reader reads in their own language.
Imports no app: each importer's model and problem rows are passed in."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, trans_real

from enseigne.lib.forms import form_errors
from enseigne.lib.rowsecurity import ALL, db_scope

REPORT_LINES_SHOWN = 20

# How long a worker owns the import it runs without committing a batch. Each batch renews
# it; once it has passed, the worker is taken for dead (killed, out of memory, the machine
# restarted) and the minute's sweep queues the import again, to go on after its last
# committed batch. A batch takes seconds: two minutes leave a wide margin.
IMPORT_LEASE = dt.timedelta(minutes=2)
# Runs (claims) an import gets before the sweep stops trying and says it failed: a file that
# kills its worker every time must not kill one every few minutes for ever.
IMPORT_ATTEMPTS = 3

T = TypeVar("T")


def check_upload_size(size: int) -> None:
    """Every import's one size limit, with an error that names it (the page checks the
    upload's size before reading it; the importer checks what it is handed)."""
    if size > settings.IMPORT_MAX_BYTES:
        raise ValidationError(
            {
                "file": _("The file is larger than %(size)s MB.")
                % {"size": settings.IMPORT_MAX_BYTES // 1_000_000}
            }
        )


def upload_form(form_class, request, field: str, nodes: Iterable[Any]):
    """An import's upload form, bound to the request's POST, whose ``field`` offers ``nodes``
    (the units or nodes the user may import into; the first is proposed). No node to offer
    is a role that may not import: 403."""
    choices = [(str(node.public_id), node.name) for node in nodes]
    if not choices:
        raise PermissionDenied
    form = form_class(request.POST or None, request.FILES or None, initial={field: choices[0][0]})
    form.fields[field].choices = choices
    return form


def upload_prepare(form, prepare: Callable[[dict, str, bytes], T]) -> T | None:
    """An import's upload page: the bound form checked, the upload's size checked before it
    is read, then ``prepare(cleaned_data, file_name, content)`` (the importer's first step);
    a ``ValidationError`` lands on the form's fields. None when the page shows the form again."""
    if not form.is_valid():
        return None
    upload = form.cleaned_data["file"]
    try:
        check_upload_size(upload.size)
        return prepare(form.cleaned_data, upload.name, upload.read())
    except ValidationError as exc:
        form_errors(form, exc)
        return None


class ImportStatus(models.TextChoices):
    """Every import's steps."""

    MAPPING = "mapping", gettext_lazy("Waiting for column mapping")
    QUEUED = "queued", gettext_lazy("Queued")
    RUNNING = "running", gettext_lazy("Importing")
    DONE = "done", gettext_lazy("Done")
    FAILED = "failed", gettext_lazy("Failed")


class LeaseLost(Exception):
    """Another run took this import over (this one was taken for dead): stop, write nothing."""


class ImportProgress(models.Model):
    """What every import model (contacts, sales, catalogue) keeps the same way: its stored
    file and mapping, its steps (``ImportStatus``), its progress, and the worker's lease.
    Each model adds its owner (a unit or a node, whose path is ``unit_path``) and counts."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    unit_path = models.CharField(max_length=255)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=500)
    file_sha256 = models.CharField(max_length=64)
    columns = models.JSONField(default=list)
    mapping = models.JSONField(default=dict)
    # The language of whoever started the import: its row-by-row report is written in it.
    language = models.CharField(max_length=8, blank=True)
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.MAPPING
    )
    total_rows = models.PositiveIntegerField(null=True)
    processed_rows = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Until when the run (or, while queued, the queue) owns the import; see IMPORT_LEASE.
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    Status = ImportStatus

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == ImportStatus.DONE else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))

    @property
    def is_finished(self) -> bool:
        return self.status in {ImportStatus.DONE, ImportStatus.FAILED}

    @property
    def ignored_columns(self) -> list[str]:
        """The file's columns mapped to no field: their values were not imported."""
        mapped = {column for column, target in self.mapping.items() if target}
        return [column for column in self.columns if column not in mapped]


def import_not_started(imp: ImportProgress) -> None:
    """An import's mapping step is over once it is queued: say so to a second submit."""
    if imp.status != ImportStatus.MAPPING:
        raise ValidationError(_("This import has already started."))


def import_queue(
    model: type[ImportProgress],
    import_id: int,
    task: Callable[[int], Any] | None,
    **fields: Any,
) -> None:
    """Queue a mapped import (``fields``: its checked mapping and options), as one
    compare-and-swap from the mapping step, in the starter's language, with the queue's
    lease; ``task`` runs it after commit (None: the caller runs it, as the command line)."""
    updated = model._default_manager.filter(Q(status=ImportStatus.MAPPING), pk=import_id).update(
        **fields,
        language=translation.get_language() or "",
        status=ImportStatus.QUEUED,
        **lease_renewed(),
    )
    if not updated:
        raise ValidationError(_("This import has already started."))
    if task is not None:
        transaction.on_commit(lambda: task(import_id))


def import_give_up(model: type[ImportProgress], import_id: int, message: Any) -> None:
    """An import's run failed for good: mark it failed with ``message`` (lazy, written in
    the starter's language; ``%(rows)s`` is the rows done, ``%(line)s`` the file line it
    stopped at), rather than leave an endless progress bar. Nothing when it has finished."""
    unfinished = Q(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING])
    with db_scope(ALL):
        imp = model._default_manager.filter(unfinished, pk=import_id).first()
        if imp is None:
            return
        with translation.override(imp.language or settings.LANGUAGE_CODE):
            done = imp.processed_rows
            error = str(message) % {"rows": done, "line": done + 2}
        model._default_manager.filter(unfinished, pk=import_id).update(
            status=ImportStatus.FAILED, error=error, finished_at=timezone.now()
        )


_RUNNING = Q(status=ImportStatus.RUNNING)


def lease_renewed() -> dict[str, Any]:
    """The fields an import's update sets when it is queued or commits a batch."""
    return {"lease_until": timezone.now() + IMPORT_LEASE}


def _stalled() -> Q:
    """Queued or running, and nobody has renewed the lease in time (a lease from before
    leases existed is as good as expired)."""
    expired = Q(lease_until__lt=timezone.now()) | Q(lease_until__isnull=True)
    return Q(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]) & expired


def import_claim(model: type[ImportProgress], import_id: int) -> bool:
    """Take an import to run it, as one compare-and-swap: a queued one, or one whose run
    stopped renewing its lease (that run is dead, and this one goes on after its last
    committed batch). False when another run holds it or it has finished."""
    now = timezone.now()
    return bool(
        model._default_manager.filter(pk=import_id)
        .filter(Q(status=ImportStatus.QUEUED) | _stalled())
        .update(
            status=ImportStatus.RUNNING,
            started_at=Coalesce(F("started_at"), now),
            attempts=F("attempts") + 1,
            **lease_renewed(),
        )
    )


def import_checkpoint(
    model: type[ImportProgress], import_id: int, position: dict[str, Any], **updates: Any
) -> None:
    """Commit a batch's progress, in the batch's transaction: only if the import is still
    where this run left it (``position``, e.g. ``processed_rows``) and still running, so a
    run taken for dead that wakes up rolls its batch back (``LeaseLost``) rather than write
    it a second time after the run that took over."""
    updated = model._default_manager.filter(_RUNNING, pk=import_id, **position).update(
        **updates, **lease_renewed()
    )
    if not updated:
        raise LeaseLost(import_id)


def import_run(model: Any, import_id: int, run_claimed: Callable[[Any], T], *related: str) -> T:
    """Run an import to its end (``run_claimed``, in its starter's language), or go on with
    one whose run died, after its last committed batch; safe to call twice: an import
    another run holds, or one finished, is returned as it is."""
    with db_scope(ALL):
        claimed = import_claim(model, import_id)
        imp = model._default_manager.select_related(*related).get(pk=import_id)
    if not claimed:
        return imp
    with translation.override(imp.language or settings.LANGUAGE_CODE):
        return run_claimed(imp)


def import_unreadable(imp: Any, error: Exception) -> None:
    """The stored file cannot be read (gone, not text any more): the import failed, saying
    why. Retrying would not help."""
    with db_scope([imp.unit_path]):
        type(imp)._default_manager.filter(pk=imp.pk).update(
            status=ImportStatus.FAILED,
            error=_("The file could not be read as CSV: %(detail)s") % {"detail": error},
            finished_at=timezone.now(),
        )
        imp.refresh_from_db()


def import_done(imp: Any, rows: int) -> None:
    """The run read and wrote every row (``rows``: the file's, now that they are known)."""
    with db_scope([imp.unit_path]):
        type(imp)._default_manager.filter(pk=imp.pk).update(
            status=ImportStatus.DONE,
            finished_at=timezone.now(),
            processed_rows=rows,
            total_rows=rows,
            lease_until=None,
        )
        imp.refresh_from_db()


def import_release(model: type[ImportProgress], import_id: int) -> None:
    """A run failed on an error it will retry: let the retry claim the import at once."""
    model._default_manager.filter(_RUNNING, pk=import_id).update(lease_until=None)


def import_run_task(
    model: type[ImportProgress],
    import_id: int,
    run: Callable[[int], Any],
    give_up: Callable[[int], None],
    *,
    last_attempt: bool,
) -> None:
    """The body of every import task: run (or go on with) the import; on an error, let the
    retry take it, or, on the last attempt, say it failed rather than leave it running."""
    try:
        run(import_id)
    except LeaseLost:
        return
    except Exception:
        with db_scope(ALL):
            if last_attempt:
                give_up(import_id)
            else:
                import_release(model, import_id)
        raise


def import_sweep(
    model: type[ImportProgress], queue: Callable[[int], Any], give_up: Callable[[int], None]
) -> list[int]:
    """The worker's minute: queue again every import whose run died (or whose queued task
    was lost), and give up on one that has had its attempts. Returns the ids queued again.
    Queuing one twice is harmless: only one run claims it."""
    with db_scope(ALL):
        stalled = list(model._default_manager.filter(_stalled()).values_list("pk", "attempts"))
    again = []
    for import_id, attempts in stalled:
        if attempts >= IMPORT_ATTEMPTS:
            give_up(import_id)
        else:
            queue(import_id)
            again.append(import_id)
    return again


# What an import "for real" takes from its dry run (besides its owner): the same stored
# file, read again (no copy is made), with the same mapping.
_AGAIN_FIELDS = ("unit_path", "file_name", "file_path", "file_sha256", "columns", "mapping")


def import_again(
    model: Any,  # an import model with the fields of _AGAIN_FIELDS, an owner and created_by
    import_id: int,
    *,
    owner: str,
    actor: Any,
    start: Callable[[Any], Any],
) -> Any:
    """After a dry run: import the same file with the same mapping, for real, as a new
    import (the dry run's report stays as it was), handed to ``start`` (the importer's own
    start, which checks the mapping and queues it). Once: a second click (or a second tab)
    gets the import the first one started. ``owner`` names the field holding the import's
    unit or node. Call it in a transaction."""
    dry = model._default_manager.select_for_update().get(pk=import_id)
    if not (dry.dry_run and dry.status == ImportStatus.DONE):
        raise ValidationError(_("Only a finished dry run can be imported for real."))
    started = model._default_manager.filter(
        **{owner: getattr(dry, owner)},
        file_path=dry.file_path,
        dry_run=False,
        created_at__gte=dry.created_at,
    ).first()
    if started is not None:
        return started
    again = model._default_manager.create(
        **{owner: getattr(dry, owner)},
        **{name: getattr(dry, name) for name in _AGAIN_FIELDS},
        total_rows=dry.total_rows,
        created_by=actor,
    )
    return start(again)


def import_report(finished: bool, lines: QuerySet, kinds: Iterable[tuple[str, Any, Any]]) -> dict:
    """A finished import's report by kind, in the order of ``kinds`` (kind, heading, what to
    do): the first lines of each and how many there are. ``lines`` are the import's problem
    rows, with ``kind``, ``row_number``, ``field``, ``value`` and ``reason``."""
    if not finished:
        return {"report": []}
    counts = dict(lines.values_list("kind").annotate(n=Count("id")).order_by())
    report = [
        {
            "kind": kind,
            "heading": heading,
            "note": note,
            "count": counts[kind],
            "lines": lines.filter(kind=kind)[:REPORT_LINES_SHOWN],
        }
        for kind, heading, note in kinds
        if counts.get(kind)
    ]
    return {"report": report, "report_counts": counts}


# --- A report's reasons, in the language of whoever reads them -------------------------
#
# A report line is written once, by the worker, and read later by anyone with access, in
# their own language (and in the CSV download). So a reason is stored as its message's
# source text (the msgid) and parameters, and translated when it is shown. The checks that
# produce the reasons (``commerce.cleaning``, ``contacts.validation``, ...) build their
# messages with ``gettext(...) % params`` as everywhere else; ``reasons_as_source`` makes
# those calls, for the duration of a check, return the source text marked with its msgid
# and parameters (``Reason``), which ``reason_stored`` encodes. A reason stored as plain
# text (a line from before, or one too long to encode) is shown as it was written.

REASON_MARK = "\x1f"  # a control character no message or file value starts with


class Reason(str):
    """A message in its source language that remembers its msgid and its parameters (a
    ``str``: ``%`` with a mapping, ``str()`` and ``format`` keep the memory; anything else
    gives plain text, which is stored as it is)."""

    msgid: str
    params: dict[str, Any] | None

    def __new__(cls, text: str, msgid: str, params: Mapping[str, Any] | None = None) -> Reason:
        reason = super().__new__(cls, text)
        reason.msgid, reason.params = msgid, dict(params) if params is not None else None
        return reason

    def __mod__(self, params: Any) -> str:
        text = str.__mod__(self, params)
        if isinstance(params, Mapping) and self.params is None:
            return Reason(text, self.msgid, params)
        return text

    def __str__(self) -> str:
        return self  # so that ``str(error)`` on an exception built from a Reason keeps it


class _SourceCatalogue:
    """Stands in for the active translation while reasons are recorded: every message in
    its source language, ``gettext`` ones marked with their msgid."""

    def gettext(self, message: str) -> str:
        return Reason(message, message)

    def ngettext(self, singular: str, plural: str, number: int) -> str:
        return singular if number == 1 else plural

    def to_language(self) -> str:
        return "en"


@contextmanager
def reasons_as_source() -> Iterator[None]:
    """Within this block, ``gettext`` gives ``Reason`` objects (source text, msgid and
    parameters) rather than translations: wrap the checks whose messages a report stores,
    not writes that store other text. Django's per-thread active translation is swapped
    for the block, as ``translation.override`` does (same thread-local, restored after)."""
    active = trans_real._active  # type: ignore[attr-defined]
    previous = getattr(active, "value", None)
    active.value = _SourceCatalogue()
    try:
        yield
    finally:
        if previous is None:
            del active.value
        else:
            active.value = previous


def reason_stored(message: Any, limit: int) -> str:
    """What a report line keeps of ``message`` (at most ``limit`` characters): its msgid
    and parameters when it is a ``Reason`` and they fit, else its text."""
    if isinstance(message, Reason):
        encoded = REASON_MARK + json.dumps(_encoded(message), ensure_ascii=False)
        if len(encoded) <= limit:
            return encoded
    return str.__str__(str(message))[:limit]


def _encoded(value: Any) -> Any:
    """A parameter as JSON: a number as it is, a message within the message (``Reason``)
    by its msgid, anything else as text."""
    if isinstance(value, Reason):
        params = value.params
        return {
            "msgid": value.msgid,
            "params": None if params is None else {k: _encoded(v) for k, v in params.items()},
        }
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return str.__str__(str(value))


def _decoded(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    text = _(value["msgid"]) if value["msgid"] else ""
    params = value["params"]
    return text if params is None else text % {k: _decoded(v) for k, v in params.items()}


def reason_shown(stored: str) -> str:
    """A stored reason in the reader's language (the active one); a reason stored as text
    is shown as it was written."""
    if not stored.startswith(REASON_MARK):
        return stored
    try:
        return str(_decoded(json.loads(stored[len(REASON_MARK) :])))
    except (ValueError, KeyError, TypeError):
        return stored[len(REASON_MARK) :]
