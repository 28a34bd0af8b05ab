"""What the UI calls each contact field and each segment operator.

Rules, import mappings and the API keep the keys (``first_name``, ``in_last_days``);
people read these labels, in their language. One table for the import's column matching
and the segment builder, so a field has the same name on both screens.
"""

from __future__ import annotations

from django.utils.dates import MONTHS
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

FIELD_LABELS = {
    "email": _("Email"),
    "phone": _("Mobile phone"),
    "country": _("Country (for phone numbers)"),
    "first_name": _("First name"),
    "last_name": _("Last name"),
    "birthday": _("Birthday"),
    "language": _("Language"),
    "is_customer": _("Existing customer (has bought)"),
    "tags": _("Tags (separated by commas)"),
    "tag": _("Tag"),
    "consent_email": _("Email consent"),
    "consent_sms": _("SMS consent"),
    "created_at": _("Date added"),
    "unit": _("Store or region"),
}

# Read after the field's label: "Birthday · is in the month", "Email consent · is given".
OPERATOR_LABELS = {
    "equals": pgettext_lazy("segment operator", "is"),
    "not_equals": pgettext_lazy("segment operator", "is not"),
    "contains": pgettext_lazy("segment operator", "contains"),
    "starts_with": pgettext_lazy("segment operator", "starts with"),
    "is_empty": pgettext_lazy("segment operator", "is empty"),
    "is_not_empty": pgettext_lazy("segment operator", "is filled in"),
    "before": pgettext_lazy("segment operator", "is before"),
    "after": pgettext_lazy("segment operator", "is after"),
    "on": pgettext_lazy("segment operator", "is on"),
    "in_last_days": pgettext_lazy("segment operator", "is within the last … days"),
    "month_is": pgettext_lazy("segment operator", "is in the month of"),
    "is_valid": pgettext_lazy("segment operator", "is given (may receive messages)"),
    "is_not_valid": pgettext_lazy("segment operator", "is not given"),
    "has": pgettext_lazy("segment operator", "has the tag"),
    "has_not": pgettext_lazy("segment operator", "does not have the tag"),
    "is_true": pgettext_lazy("segment operator", "yes"),
    "is_false": pgettext_lazy("segment operator", "no"),
    "in_subtree": pgettext_lazy("segment operator", "is in"),
    "not_in_subtree": pgettext_lazy("segment operator", "is not in"),
    "greater_than": pgettext_lazy("segment operator", "is more than"),
    "less_than": pgettext_lazy("segment operator", "is less than"),
    # What customers did (received, opened, clicked…): "Clicked · this campaign".
    "campaign": pgettext_lazy("segment operator", "this campaign"),
    "not_campaign": pgettext_lazy("segment operator", "not this campaign"),
    "any_in_last_days": pgettext_lazy("segment operator", "any, within the last … days"),
    "none_in_last_days": pgettext_lazy("segment operator", "none within the last … days"),
}

ATTRIBUTE_PREFIX = "attributes."


def field_label(key: str, attribute_labels: dict[str, str] | None = None) -> str:
    """The label of a field key; HQ's custom attributes are named by HQ's own label."""
    if key.startswith(ATTRIBUTE_PREFIX):
        attribute = key.removeprefix(ATTRIBUTE_PREFIX)
        return (attribute_labels or {}).get(attribute, attribute)
    return str(FIELD_LABELS.get(key, key))


def operator_label(op: str) -> str:
    return str(OPERATOR_LABELS.get(op, op))


def builder_labels() -> dict:
    """The segment builder's own wording (its script shows only what it is given)."""
    return {
        "all": str(_("all of")),
        "any": str(_("any of")),
        "addCondition": str(_("+ condition")),
        "addGroup": str(_("+ group")),
        "remove": str(_("Remove")),
        "match": str(_("Contacts matching")),
        "field": str(_("Field")),
        "operator": str(_("Condition")),
        "value": str(_("Value")),
        "months": [[str(number), str(name)] for number, name in MONTHS.items()],
    }
