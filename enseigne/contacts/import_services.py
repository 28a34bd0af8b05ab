"""Starting an import: store the file, propose a mapping, then queue the job."""

from __future__ import annotations

import itertools
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from enseigne.contacts.import_reader import clean_mapping, import_create, read_rows
from enseigne.contacts.importer import guess_mapping, import_targets
from enseigne.contacts.models import Channel, ContactImport
from enseigne.contacts.tasks import run_contact_import
from enseigne.lib.imports import import_not_started, import_queue
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User
from enseigne.network.services import audit


def _first_rows(path: Path, count: int = 20) -> list[list[str]]:
    """The file's first rows, for guessing a column by its values."""
    _header, rows = read_rows(path)
    try:
        return [row.fields for row in itertools.islice(rows, count) if row.fields is not None]
    finally:
        rows.close()


@transaction.atomic
def import_prepare(*, actor: User, unit: OrgNode, file_name: str, content: bytes) -> ContactImport:
    if not access_for(actor).can(Capability.IMPORT_CONTACTS, unit):
        raise PermissionDenied
    if unit.kind != OrgNode.Kind.UNIT:
        raise ValidationError({"unit": _("Import into a unit.")})
    contact_import = import_create(
        ContactImport,
        actor,
        (file_name, content),
        lambda stored: guess_mapping(stored.columns, _first_rows(Path(stored.path))),
        unit=unit,
        unit_path=unit.path,
    )
    audit(
        actor=actor,
        action="import.upload",
        target=contact_import,
        node_path=unit.path,
        changes={"file": file_name[:255]},
    )
    return contact_import


@transaction.atomic
def import_start(
    *,
    actor: User,
    contact_import: ContactImport,
    mapping: dict[str, str],
    consent_channels: list[str],
    consent_wording: str = "",
    tags: list[str] | None = None,
) -> ContactImport:
    if not access_for(actor).can(Capability.IMPORT_CONTACTS, contact_import.unit):
        raise PermissionDenied
    import_not_started(contact_import)
    targets = set(import_targets())
    clean = clean_mapping(mapping, contact_import.columns, targets)
    if not {"email", "phone"} & set(clean.values()):
        raise ValidationError({"mapping": _("Map at least one column to email or phone.")})
    unknown = set(consent_channels) - set(Channel.values)
    if unknown:
        raise ValidationError(
            {
                "consent_channels": _("Unknown channels: %(channels)s.")
                % {"channels": ", ".join(sorted(unknown))}
            }
        )
    if consent_channels and not consent_wording.strip():
        raise ValidationError(
            {
                "consent_wording": _(
                    "Say which consent wording these contacts agreed to (e.g. “in-store form v2”)."
                )
            }
        )
    import_queue(
        ContactImport,
        contact_import.pk,
        run_contact_import,
        mapping=clean,
        consent_channels=sorted(consent_channels),
        consent_wording=consent_wording.strip()[:40],
        tag_names=sorted({t.strip().lower() for t in (tags or []) if t.strip()}),
    )
    audit(
        actor=actor,
        action="import.start",
        target=contact_import,
        node_path=contact_import.unit_path,
        changes={"mapping": clean, "consent_channels": sorted(consent_channels)},
    )
    contact_import.refresh_from_db()
    return contact_import
