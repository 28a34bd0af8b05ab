"""HQ's mother base (« Base clients »): search, person card, review queue, history, settings.

Thin views over ``selectors`` and ``services``. Every page first asks
``get_identity_root_for_user``: for a store or a region the mother base does not exist
(404, as a missing object); an HQ role without ``manage_identity`` gets 403.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from enseigne.contacts.models import Contact
from enseigne.lib.ids import parse_uuid
from enseigne.lib.paging import BoundedPaginator
from enseigne.network.access import AuthenticatedRequest, access_for

from . import evidence, selectors, services
from .models import IdentityPolicy, Person, RecordLink


class PolicyForm(forms.Form):
    mode = forms.ChoiceField(
        label=gettext_lazy("Who controls the customer data"),
        choices=IdentityPolicy.Mode.choices,
        widget=forms.RadioSelect,
    )
    gmail_rules = forms.BooleanField(
        label=gettext_lazy(
            "Treat Gmail addresses written with dots or a +suffix as one address "
            "(marie.dupont@gmail.com = mariedupont+promo@gmail.com)"
        ),
        required=False,
    )


def _messages_of(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or _("You may not do this.")


def _records_chosen(request: AuthenticatedRequest, root: str) -> list[Contact]:
    ids = [parsed for v in request.POST.getlist("records") if (parsed := parse_uuid(v))]
    return list(Contact.objects.filter(public_id__in=ids, unit_path__startswith=root))


@login_required
def person_search(request: AuthenticatedRequest) -> HttpResponse:
    selectors.get_identity_root_for_user(request.user)
    query = request.GET.get("q", "")
    people = selectors.people_search(request.user, query=query)
    page = BoundedPaginator(people, settings.CONTACTS_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    summaries = selectors.people_summaries(request.user, page.object_list)
    for person in page.object_list:
        person.summary = summaries[person.pk]
    return render(
        request,
        "identity/search.html",
        {"page": page, "q": query, "open": selectors.open_review_count(request.user)},
    )


@login_required
def person_detail(request: AuthenticatedRequest, public_id) -> HttpResponse:
    person = selectors.get_person_for_user(request.user, public_id)
    card = selectors.person_card(request.user, person)
    return render(
        request,
        "identity/person.html",
        {"card": card, "undone": selectors.undone_ids(card.changes)},
    )


@login_required
@require_POST
def person_merge(request: AuthenticatedRequest) -> HttpResponse:
    root = selectors.get_identity_root_for_user(request.user)
    ids = [parsed for v in request.POST.getlist("people") if (parsed := parse_uuid(v))]
    people = list(
        Person.objects.filter(
            public_id__in=ids,
            pk__in=RecordLink.objects.filter(unit_path__startswith=root).values("person_id"),
        )
    )
    try:
        change = services.merge(
            actor=request.user, persons=people, reason=request.POST.get("reason", "")
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _messages_of(exc))
        return redirect("person_search")
    messages.success(
        request, _("The records are now one person. You can undo this in the history.")
    )
    return redirect("person_detail", public_id=change.into.public_id)  # type: ignore[union-attr]


@login_required
@require_POST
def person_split(request: AuthenticatedRequest, public_id) -> HttpResponse:
    person = selectors.get_person_for_user(request.user, public_id)
    root = selectors.get_identity_root_for_user(request.user)
    records = [
        r
        for r in _records_chosen(request, root)
        if RecordLink.objects.filter(contact=r, person=person).exists()
    ]
    try:
        change = services.split(
            actor=request.user, records=records, reason=request.POST.get("reason", "")
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _messages_of(exc))
        return redirect("person_detail", public_id=person.public_id)
    messages.success(
        request,
        _(
            "The records now make a separate person and will stay apart. You can undo this in the history."
        ),
    )
    return redirect("person_detail", public_id=change.into.public_id)  # type: ignore[union-attr]


@login_required
def review_queue(request: AuthenticatedRequest) -> HttpResponse:
    candidates = selectors.open_candidates(request.user)
    page = BoundedPaginator(candidates, 20).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    persons = selectors.candidate_persons(page.object_list)
    for candidate in page.object_list:
        candidate.left.person = persons.get(candidate.left_id)
        candidate.right.person = persons.get(candidate.right_id)
        candidate.comparisons = evidence.comparisons(candidate.detail)  # type: ignore[attr-defined]
    return render(request, "identity/review.html", {"page": page})


@login_required
@require_POST
def review_decide(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    candidate = selectors.get_candidate_for_user(request.user, pk)
    decision = request.POST.get("decision", "")
    if decision not in (services.Decision.MERGE, services.Decision.KEEP_APART):
        messages.error(request, _("Choose to merge the two records or to keep them apart."))
        return redirect("review_queue")
    try:
        services.decide(actor=request.user, candidate=candidate, decision=decision)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _messages_of(exc))
    else:
        if decision == services.Decision.MERGE:
            messages.success(request, _("Merged. You can undo this in the history."))
        else:
            messages.success(request, _("Kept apart: no matching will join them again."))
    return redirect("review_queue")


@login_required
def change_history(request: AuthenticatedRequest) -> HttpResponse:
    changes = selectors.changes_for_user(request.user)
    page = BoundedPaginator(changes, 30).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    for change in page.object_list:
        change.record_count = sum(1 for move in change.moves if "contact" in move)
    return render(
        request,
        "identity/history.html",
        {"page": page, "undone": selectors.undone_ids(list(page.object_list))},
    )


@login_required
@require_POST
def change_undo(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    change = selectors.get_change_for_user(request.user, pk)
    try:
        services.undo(actor=request.user, change=change)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _messages_of(exc))
    else:
        messages.success(request, _("Undone."))
    return redirect("change_history")


@login_required
def identity_settings(request: AuthenticatedRequest) -> HttpResponse:
    root = selectors.get_identity_root_for_user(request.user)
    policy = selectors.policy_of_root(root)
    form = PolicyForm(
        request.POST or None, initial={"mode": policy.mode, "gmail_rules": policy.gmail_rules}
    )
    if request.method == "POST" and form.is_valid():
        try:
            _policy, rekey = services.policy_update(
                actor=request.user,
                mode=form.cleaned_data["mode"],
                gmail_rules=form.cleaned_data["gmail_rules"],
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            if rekey:
                messages.info(request, _rekey(root))
            messages.success(request, _("The settings were saved."))
            return redirect("identity_settings")
    return render(
        request,
        "identity/settings.html",
        {"form": form, "policy": policy, "is_admin": access_for(request.user).is_hq_admin},
    )


def _rekey(root: str) -> str:
    """Recompute the e-mail keys now when the base is small, else in the worker."""
    from .linking import rekey_network
    from .tasks import rekey_network_task

    records = RecordLink.objects.filter(unit_path__startswith=root).count()
    if records > getattr(settings, "ENSEIGNE_IDENTITY_REKEY_INLINE_MAX", 20_000):
        transaction.on_commit(lambda: rekey_network_task(root))
        return _(
            "The e-mail keys of %(count)s records are being recomputed in the background; "
            "records that now share an address will be joined within a few minutes."
        ) % {"count": records}
    changed = rekey_network(root)
    return _("%(count)s e-mail keys were recomputed.") % {"count": changed}
