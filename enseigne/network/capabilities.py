"""The capabilities HQ grants to roles. Keys are stable; labels are translated."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop


class Capability(models.TextChoices):
    MANAGE_USERS = "manage_users", _("Manage users and roles")
    MANAGE_NETWORK = "manage_network", _("Manage the org tree and unit profiles")
    MANAGE_TEMPLATES = "manage_templates", _("Manage templates")
    MANAGE_ASSETS = "manage_assets", _("Manage assets")
    PERSONALISE_TEMPLATES = "personalise_templates", _("Personalise templates (local versions)")
    ADD_UNIT_ASSETS = "add_unit_assets", _("Add the unit's own assets")
    CREATE_NATIONAL_CAMPAIGNS = "create_national_campaigns", _("Create national campaigns")
    APPROVE_CAMPAIGNS = "approve_campaigns", _("Approve campaigns")
    CREATE_LOCAL_CAMPAIGNS = "create_local_campaigns", _("Create local campaigns")
    CREATE_FREE_CAMPAIGNS = (
        "create_free_campaigns",
        _("Write free campaigns (the unit's own text in the brand's frame)"),
    )
    SEND_WITHOUT_APPROVAL = "send_without_approval", _("Send without approval")
    SEND_SMS = "send_sms", _("Send SMS")
    EXCEED_BUDGET = "exceed_budget", _("Send over budget")
    MANAGE_SENDING_RULES = "manage_sending_rules", _("Set sending rules, pressure caps and budgets")
    VIEW_CONTACTS = "view_contacts", _("View contacts")
    EDIT_CONTACTS = "edit_contacts", _("Add and edit contacts")
    ERASE_CONTACTS = "erase_contacts", _("Erase contacts (GDPR)")
    IMPORT_CONTACTS = "import_contacts", _("Import contacts")
    EXPORT_CONTACTS = "export_contacts", _("Export contacts")
    MANAGE_SEGMENTS = "manage_segments", _("Build segments")
    VIEW_NETWORK_ANALYTICS = "view_network_analytics", _("View network analytics")
    RECORD_CONVERSIONS = "record_conversions", _("Record sales (conversions)")
    MANAGE_IDENTITY = (
        "manage_identity",
        _("Manage the customer base (search people, merge and split records)"),
    )


C = Capability

# Built-in roles: key -> (name, level, capabilities). HQ admins may add more. The name is
# stored in English and shown translated (``Role.label``); HQ's own roles show as named.
BUILTIN_ROLES: dict[str, tuple[str, str, set[str]]] = {
    "hq_admin": (
        gettext_noop("HQ admin"),
        "hq",
        {c.value for c in Capability},
    ),
    "hq_marketer": (
        gettext_noop("HQ marketer"),
        "hq",
        {
            C.MANAGE_TEMPLATES,
            C.MANAGE_ASSETS,
            C.CREATE_NATIONAL_CAMPAIGNS,
            C.APPROVE_CAMPAIGNS,
            C.SEND_WITHOUT_APPROVAL,
            C.SEND_SMS,
            C.VIEW_CONTACTS,
            C.MANAGE_SEGMENTS,
            C.EXPORT_CONTACTS,
            C.VIEW_NETWORK_ANALYTICS,
            C.EXCEED_BUDGET,
            C.RECORD_CONVERSIONS,
            C.MANAGE_IDENTITY,
        },
    ),
    "region_manager": (
        gettext_noop("Region manager"),
        "region",
        {
            C.APPROVE_CAMPAIGNS,
            C.CREATE_LOCAL_CAMPAIGNS,
            C.SEND_WITHOUT_APPROVAL,
            C.VIEW_CONTACTS,
            C.MANAGE_SEGMENTS,
            C.VIEW_NETWORK_ANALYTICS,
            C.PERSONALISE_TEMPLATES,
            C.EXCEED_BUDGET,
        },
    ),
    "unit_manager": (
        gettext_noop("Unit manager"),
        "unit",
        {
            C.CREATE_LOCAL_CAMPAIGNS,
            C.VIEW_CONTACTS,
            C.EDIT_CONTACTS,
            C.ERASE_CONTACTS,
            C.IMPORT_CONTACTS,
            C.EXPORT_CONTACTS,
            C.MANAGE_SEGMENTS,
            C.PERSONALISE_TEMPLATES,
            C.ADD_UNIT_ASSETS,
            C.RECORD_CONVERSIONS,
        },
    ),
    "unit_staff": (
        gettext_noop("Unit staff"),
        "unit",
        {C.VIEW_CONTACTS, C.EDIT_CONTACTS},
    ),
}
BUILTIN_ROLES = {
    k: (label, level, {str(c) for c in caps}) for k, (label, level, caps) in BUILTIN_ROLES.items()
}
