"""HQ's writes on its network's personas: create, edit, reorder, delete, recompute."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from enseigne.contacts.records import HqRowsEraser
from enseigne.contacts.segments import SegmentCompiler
from enseigne.identity.services import identity_root
from enseigne.network.models import Network, User
from enseigne.network.services import audit

from .models import Persona
from .selectors import personas_of_root

# The conditions that read the assignment itself: a persona's rules may not use them.
PERSONA_FIELDS = frozenset({"persona", "person.persona", "network_persona"})


def _root(actor: User) -> str:
    try:
        return identity_root(actor)
    except LookupError:
        raise PermissionDenied(_("Only HQ defines the personas.")) from None


def _fields(tree) -> list[tuple[str, object]]:
    """(where, field) of each condition, numbered as the builder numbers them."""
    found = []

    def walk(node, number: str) -> None:
        for index, rule in enumerate(node.get("rules") or [], start=1):
            inner = f"{number}.{index}" if number else str(index)
            if isinstance(rule, dict) and "match" in rule:
                walk(rule, inner)
            elif isinstance(rule, dict):
                found.append((inner, rule.get("field")))

    if isinstance(tree, dict):
        walk(tree, "")
    return found


def check_persona_rules(actor: User, rules) -> None:
    """The segment compiler's checks, then: at least one condition, and none on personas."""
    SegmentCompiler(actor).compile(rules)
    fields = _fields(rules)
    if not fields:
        raise ValidationError(_("A persona needs at least one condition."))
    for number, field in fields:
        if field in PERSONA_FIELDS:
            raise ValidationError(
                _("rule %(number)s: a persona cannot be defined by personas.") % {"number": number}
            )


@transaction.atomic
def persona_save(
    *, actor: User, name: str, rules, description: str = "", persona: Persona | None = None
) -> Persona:
    """Create (last in the order) or update a persona after validating its rules."""
    root = _root(actor)
    network = Network.objects.select_for_update().get(node__path=root)
    name = name.strip()[:80]
    if not name:
        raise ValidationError({"name": _("Give the persona a name.")})
    check_persona_rules(actor, rules)
    namesakes = personas_of_root(root).filter(name=name)
    if persona is not None:
        namesakes = namesakes.exclude(pk=persona.pk)
    if namesakes.exists():
        raise ValidationError({"name": _("Another persona already has this name.")})
    if persona is None:
        last = personas_of_root(root).aggregate(last=Max("position"))["last"]
        persona = Persona(network=network, position=0 if last is None else last + 1)
        action = "persona.create"
    else:
        action = "persona.update"
    persona.name, persona.description, persona.rules = name, description[:300], rules
    persona.updated_by = actor
    try:
        with transaction.atomic():
            persona.save()
    except IntegrityError:
        raise ValidationError({"name": _("Another persona already has this name.")}) from None
    audit(actor=actor, action=action, target=persona, node_path=root)
    _assign_after_commit(root)
    return persona


@transaction.atomic
def persona_move(*, actor: User, persona: Persona, step: int) -> None:
    """Move a persona one place earlier (``step`` −1) or later (+1) in the order; the
    positions are rewritten 0…n−1 under the network's lock."""
    root = _root(actor)
    Network.objects.select_for_update().get(node__path=root)
    ordered = list(personas_of_root(root))
    index = next(i for i, p in enumerate(ordered) if p.pk == persona.pk)
    target = index + (1 if step > 0 else -1)
    if not 0 <= target < len(ordered):
        return
    ordered[index], ordered[target] = ordered[target], ordered[index]
    for position, item in enumerate(ordered):
        if item.position != position:
            Persona.objects.filter(pk=item.pk).update(position=position)
    audit(actor=actor, action="persona.move", target=persona, node_path=root)
    _assign_after_commit(root)


@transaction.atomic
def persona_delete(*, actor: User, persona: Persona) -> None:
    root = _root(actor)
    audit(actor=actor, action="persona.delete", target=persona, node_path=root)
    persona.delete()
    _assign_after_commit(root)


def personas_recompute(*, actor: User) -> None:
    """Queue the network's assignment (HQ's "recompute now")."""
    _assign_after_commit(_root(actor))


def _assign_after_commit(root: str) -> None:
    """Every change of HQ's personas (rules, order, a deletion) is followed by the network's
    assignment, so that counts and segments never show the previous order for a night."""
    from .tasks import personas_assign

    transaction.on_commit(lambda: personas_assign(root))


# A record not linked yet is its own person: its persona row is HQ's, out of a store's sight
# when the store erases the record (settings ENSEIGNE_RECORD_HOOKS).
erased_person_personas = HqRowsEraser("personas.PersonaPerson")
