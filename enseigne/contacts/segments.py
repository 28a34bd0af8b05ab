"""Segment rule trees: validated, then compiled to one ORM filter.

A tree is ``{"match": "all"|"any", "rules": [condition or tree, ...]}`` and a condition
is ``{"field": ..., "op": ..., "value": ...}``. Validation errors name where the
problem is ("rule 2.1: ...") so the builder can point at it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from enseigne.contacts.fields import field_label, operator_label
from enseigne.contacts.models import (
    VALID_CONSENT,
    ConsentStatus,
    Contact,
    ContactTagging,
    CustomAttribute,
    Segment,
)
from enseigne.contacts.selectors import contacts_for_user, in_subtree
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for
from enseigne.network.models import OrgNode, User

MAX_DEPTH = 3
MAX_CONDITIONS = 50

TEXT_FIELDS = ("email", "phone", "first_name", "last_name", "language")
DATE_FIELDS = ("birthday", "created_at")
TEXT_OPS = ("equals", "not_equals", "contains", "starts_with", "is_empty", "is_not_empty")
DATE_OPS = ("before", "after", "on", "in_last_days", "month_is", "is_empty", "is_not_empty")
CONSENT_OPS = ("is_valid", "is_not_valid", "equals")
FIELD_OPS: dict[str, tuple[str, ...]] = {
    **{f: TEXT_OPS for f in TEXT_FIELDS},
    **{f: DATE_OPS for f in DATE_FIELDS},
    "tag": ("has", "has_not"),
    "consent_email": CONSENT_OPS,
    "consent_sms": CONSENT_OPS,
    "is_customer": ("is_true", "is_false"),
    "unit": ("in_subtree", "not_in_subtree"),
}
ATTRIBUTE_OPS = {
    CustomAttribute.Kind.TEXT: TEXT_OPS,
    CustomAttribute.Kind.CHOICE: ("equals", "not_equals", "is_empty", "is_not_empty"),
    CustomAttribute.Kind.NUMBER: (
        "equals",
        "greater_than",
        "less_than",
        "is_empty",
        "is_not_empty",
    ),
    CustomAttribute.Kind.DATE: ("before", "after", "on", "is_empty", "is_not_empty"),
    CustomAttribute.Kind.BOOLEAN: ("is_true", "is_false"),
}
NO_VALUE_OPS = {"is_empty", "is_not_empty", "is_valid", "is_not_valid", "is_true", "is_false"}


NUMBER, CHOICE, TEXT, DATE = "number", "choice", "text", "date"
# Appended to a value kind: the operator also takes ``days`` ("in category X in the last
# N days": the rule keeps ``{"value": "X", "days": 90}``).
WITH_DAYS = "+days"
MAX_DAYS = 3650
# "Is / is not one of these": the operators (and the negation) of a choice condition.
CHOICE_OPS = {"equals": CHOICE, "not_equals": CHOICE}
CHOICE_NEGATIONS = {"not_equals": "equals"}


@dataclass(frozen=True)
class ExtraField:
    """A condition a later app offers the segment builder: what customers did (received,
    clicked, bought…) lives in apps that come after contacts, so they describe their
    conditions here and settings ``ENSEIGNE_SEGMENT_FIELDS`` names who provides them.

    ``ops`` maps each operator to the kind of value it takes (``NUMBER``, ``CHOICE``,
    ``TEXT``, ``DATE`` or ``""`` for none), followed by ``WITH_DAYS`` when it also takes a
    number of days; ``negations`` maps each negative operator to the positive one it
    denies; ``compile(user, op, value, where, days)`` returns a filter on ``Contact``
    and raises ``ValidationError`` naming ``where`` on a bad value; ``choices(user)`` lists
    the ``[key, label]`` values the user may pick; ``available(user)`` says whether the
    user may use the field at all (an unavailable field is unknown to them).
    """

    field: str
    label: str | Promise
    ops: dict[str, str]
    compile: Callable[[User, str, object, str, int | None], Q]
    choices: Callable[[User], list[list[str]]] | None = None
    available: Callable[[User], bool] = lambda user: True
    # A negative operator and the positive one it denies ("none within…" → "any within…").
    negations: dict[str, str] = dataclasses.field(default_factory=dict)
    # Whether "any record of the person matches" means the same for the person. Not for a
    # figure summed over the records (amount spent, number of purchases, average basket,
    # first purchase, favourite category): a person's needs adding up her records first.
    per_person: bool = True
    # What the condition counts, in a sentence the builder shows under it ("" for none).
    help: str | Promise = ""


@lru_cache(maxsize=1)
def extra_fields() -> dict[str, ExtraField]:
    """Every later app's conditions, in the settings' order. Each provider is given the
    fields declared before it (identity lifts them to the person)."""
    fields: list[ExtraField] = []
    for path in getattr(settings, "ENSEIGNE_SEGMENT_FIELDS", ()):
        fields.extend(import_string(path)(tuple(fields)))
    return {f.field: f for f in fields}


def days_value(value, where: str) -> int:
    """A number of days for "in the last N days" conditions (1 to ten years)."""
    try:
        days = int(str(value).strip())
    except (TypeError, ValueError):
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(
            _("%(where)s: give a number of days from 1 to %(most)s.")
            % {"where": where, "most": MAX_DAYS}
        )
    return days


def field_catalogue(user: User | None = None) -> list[dict]:
    """Fields and operators the builder offers, with their labels, HQ's custom attributes
    and, for ``user``, the later apps' conditions they may use.

    Operators and choices are ``[key, label]`` pairs: the rules keep the keys.
    """

    def ops(keys) -> list[list[str]]:
        return [[op, operator_label(op)] for op in keys]

    consent = [[status.value, str(status.label)] for status in ConsentStatus]
    fields = [
        {
            "field": f,
            "label": field_label(f),
            "ops": ops(keys),
            **({"choices": consent} if f.startswith("consent_") else {}),
        }
        for f, keys in FIELD_OPS.items()
    ]
    for attribute in CustomAttribute.objects.order_by("key"):
        fields.append(
            {
                "field": f"attributes.{attribute.key}",
                "label": attribute.label,
                "ops": ops(ATTRIBUTE_OPS[attribute.kind]),
                "choices": [[choice, choice] for choice in attribute.choices],
            }
        )
    if user is not None:
        for extra in extra_fields().values():
            if extra.available(user):
                fields.append(
                    {
                        "field": extra.field,
                        "label": str(extra.label),
                        "ops": ops(extra.ops),
                        "inputs": dict(extra.ops),
                        "choices": extra.choices(user) if extra.choices else [],
                        **({"help": str(extra.help)} if extra.help else {}),
                    }
                )
    return fields


def _where(number: str) -> str:
    """Where a problem is, as the builder numbers rules: "rule 2.1"."""
    return _("rule %(number)s") % {"number": number} if number else _("rule")


class SegmentCompiler:
    def __init__(self, user: User):
        self.user = user
        self.attributes = {a.key: a for a in CustomAttribute.objects.all()}
        self.conditions = 0

    def compile(self, tree) -> Q:
        self.conditions = 0  # the limit is per tree: one compiler may compile several
        return self._tree(tree, "", 1)

    def _tree(self, tree, number: str, depth: int) -> Q:
        where = _where(number)
        if not isinstance(tree, dict) or tree.get("match") not in {"all", "any"}:
            raise ValidationError(
                _("%(where)s: a group needs match 'all' or 'any'.") % {"where": where}
            )
        if depth > MAX_DEPTH:
            raise ValidationError(
                _("%(where)s: groups can be nested %(depth)s levels deep at most.")
                % {"where": where, "depth": MAX_DEPTH}
            )
        rules = tree.get("rules")
        if not isinstance(rules, list):
            raise ValidationError(_("%(where)s: a group needs a list of rules.") % {"where": where})
        query = Q()
        for index, rule in enumerate(rules, start=1):
            inner = f"{number}.{index}" if number else str(index)
            if isinstance(rule, dict) and "match" in rule:
                part = self._tree(rule, inner, depth + 1)
            else:
                part = self._condition(rule, _where(inner))
            query = (query & part) if tree["match"] == "all" else (query | part)
        return query

    def _condition(self, rule, where: str) -> Q:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise ValidationError(
                _("A segment has %(most)s conditions at most.") % {"most": MAX_CONDITIONS}
            )
        if not isinstance(rule, dict):
            raise ValidationError(_("%(where)s: not a condition.") % {"where": where})
        field, op, value = rule.get("field"), rule.get("op"), rule.get("value")
        if isinstance(field, str) and field.startswith("attributes."):
            return self._attribute(field.split(".", 1)[1], op, value, where)
        extra = extra_fields().get(field) if isinstance(field, str) else None
        if extra is not None and extra.available(self.user):
            if op not in extra.ops:
                raise _wrong_operator(where, str(extra.label), op)
            kind = extra.ops[op]
            if kind.removesuffix(WITH_DAYS) and (value is None or value == ""):
                raise _needs_value(where, str(extra.label), op)
            days = days_value(rule.get("days"), where) if kind.endswith(WITH_DAYS) else None
            return extra.compile(self.user, op, value, where, days)
        if field not in FIELD_OPS:
            raise ValidationError(
                _("%(where)s: unknown field %(field)r.") % {"where": where, "field": field}
            )
        if op not in FIELD_OPS[field]:
            raise _wrong_operator(where, field_label(field), op)
        if op not in NO_VALUE_OPS and (value is None or value == ""):
            raise _needs_value(where, field_label(field), op)
        if field in TEXT_FIELDS:
            return _text(field, op, value)
        if field in DATE_FIELDS:
            return _date(field, op, value, where)
        if field == "tag":
            has = Exists(
                ContactTagging.objects.filter(contact=OuterRef("pk"), tag__name=str(value).lower())
            )
            return Q(has) if op == "has" else ~Q(has)
        if field in {"consent_email", "consent_sms"}:
            column = "email_consent" if field == "consent_email" else "sms_consent"
            if op == "is_valid":
                return Q(**{f"{column}__in": VALID_CONSENT})
            if op == "is_not_valid":
                return ~Q(**{f"{column}__in": VALID_CONSENT})
            if value not in ConsentStatus.values:
                raise ValidationError(
                    _("%(where)s: unknown consent status %(value)r.")
                    % {"where": where, "value": value}
                )
            return Q(**{column: value})
        if field == "is_customer":
            return Q(is_customer=op == "is_true")
        return self._unit(op, value, where)

    def _unit(self, op: str, value, where: str) -> Q:
        node = OrgNode.objects.filter(public_id=value).first() if parse_uuid(value) else None
        if node is None or not access_for(self.user).sees(node.path):
            raise ValidationError(_("%(where)s: unknown unit or region.") % {"where": where})
        query = in_subtree(node)
        return query if op == "in_subtree" else ~query

    def _attribute(self, key: str, op, value, where: str) -> Q:
        attribute = self.attributes.get(key)
        if attribute is None:
            raise ValidationError(
                _("%(where)s: HQ has not declared the attribute %(key)r.")
                % {"where": where, "key": key}
            )
        if op not in ATTRIBUTE_OPS[attribute.kind]:
            raise _wrong_operator(where, attribute.label, op)
        lookup = f"attributes__{key}"
        if op == "is_empty":
            return Q(**{f"{lookup}__isnull": True})
        if op == "is_not_empty":
            return Q(**{f"{lookup}__isnull": False})
        if op in {"is_true", "is_false"}:
            return Q(**{lookup: op == "is_true"})
        if value is None or value == "":
            raise _needs_value(where, attribute.label, op)
        if attribute.kind == CustomAttribute.Kind.NUMBER:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValidationError(
                    _("%(where)s: “%(field)s” needs a number.")
                    % {"where": where, "field": attribute.label}
                ) from None
            if value.is_integer():
                value = int(value)
            return {
                "equals": Q(**{lookup: value}),
                "greater_than": Q(**{f"{lookup}__gt": value}),
                "less_than": Q(**{f"{lookup}__lt": value}),
            }[op]
        if attribute.kind == CustomAttribute.Kind.DATE:
            day = _parse_day(value, where).isoformat()
            return {
                "before": Q(**{f"{lookup}__lt": day}),
                "after": Q(**{f"{lookup}__gt": day}),
                "on": Q(**{lookup: day}),
            }[op]
        return _text(lookup, op, str(value))


def _wrong_operator(where: str, label: str, op) -> ValidationError:
    return ValidationError(
        _("%(where)s: “%(field)s” cannot use the operator %(op)r.")
        % {"where": where, "field": label, "op": op}
    )


def _needs_value(where: str, label: str, op: str) -> ValidationError:
    return ValidationError(
        _("%(where)s: “%(field)s %(operator)s” needs a value.")
        % {"where": where, "field": label, "operator": operator_label(op)}
    )


def _text(field: str, op: str, value) -> Q:
    text = "" if value is None else str(value).strip()
    if field in {"email", "language"}:
        text = text.lower()
    if op == "equals":
        return Q(**{f"{field}__iexact" if "name" in field else field: text})
    if op == "not_equals":
        return ~Q(**{f"{field}__iexact" if "name" in field else field: text})
    if op == "contains":
        return Q(**{f"{field}__icontains": text})
    if op == "starts_with":
        return Q(**{f"{field}__istartswith": text})
    if op == "is_empty":
        return Q(**{f"{field}__isnull": True}) | Q(**{field: ""})
    return ~(Q(**{f"{field}__isnull": True}) | Q(**{field: ""}))


def _parse_day(value, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(
            _("%(where)s: %(value)r is not a date (YYYY-MM-DD).") % {"where": where, "value": value}
        ) from None


def _date(field: str, op: str, value, where: str) -> Q:
    if op == "is_empty":
        return Q(**{f"{field}__isnull": True})
    if op == "is_not_empty":
        return Q(**{f"{field}__isnull": False})
    if op == "month_is":
        try:
            month = int(value)
        except (TypeError, ValueError):
            month = 0
        if not 1 <= month <= 12:
            raise ValidationError(_("%(where)s: the month must be 1 to 12.") % {"where": where})
        return Q(**{f"{field}__month": month})
    if op == "in_last_days":
        try:
            days = int(value)
        except (TypeError, ValueError):
            raise ValidationError(
                _("%(where)s: give a number of days.") % {"where": where}
            ) from None
        since = timezone.now() - dt.timedelta(days=days)
        return Q(**{f"{field}__gte": since if field == "created_at" else since.date()})
    day = _parse_day(value, where)
    suffix = "__date" if field == "created_at" else ""
    return {
        "before": Q(**{f"{field}{suffix}__lt": day}),
        "after": Q(**{f"{field}{suffix}__gt": day}),
        "on": Q(**{f"{field}{suffix}": day}),
    }[op]


def compile_rules(user: User, rules) -> Q:
    return SegmentCompiler(user).compile(rules)


def segment_contacts(user: User, rules, owner: OrgNode | None = None) -> QuerySet[Contact]:
    """The contacts a rule tree selects, never outside the user's scope (nor the owner's)."""
    contacts = contacts_for_user(user).filter(compile_rules(user, rules))
    if owner is not None:
        contacts = contacts.filter(in_subtree(owner))
    return contacts


def segment_count(user: User, rules, owner: OrgNode | None = None) -> int:
    return segment_contacts(user, rules, owner).count()


def segment_sizes(user: User, segments: Iterable[Segment]) -> dict[int, int | None]:
    """Segment pk → its number of contacts (as ``segment_count``), all in one query.

    Each segment becomes one filtered COUNT of the same scan, so a list of segments costs
    one query rather than one per segment. A segment whose rules no longer compile (an
    attribute HQ removed since) maps to None.
    """
    compiler = SegmentCompiler(user)
    sizes: dict[int, int | None] = {}
    counts = {}
    for segment in segments:
        try:
            condition = compiler.compile(segment.rules) & in_subtree(segment.owner)
        except ValidationError:
            sizes[segment.pk] = None
        else:
            counts[f"segment_{segment.pk}"] = Count("pk", filter=condition)
    if counts:
        totals = contacts_for_user(user).aggregate(**counts)
        sizes.update({int(key.removeprefix("segment_")): n for key, n in totals.items()})
    return sizes
