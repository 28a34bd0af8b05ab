"""HQ's mother base (« Base clients »): search, person card, review queue, history, settings.

Thin views over ``selectors`` and ``services``. Every page first asks
``get_identity_root_for_user``: for a store or a region the mother base does not exist
(404, as a missing object); an HQ role without ``manage_identity`` gets 403.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from enseigne.contacts.models import Contact
from enseigne.lib.ids import parse_uuid
from enseigne.lib.paging import BoundedPaginator
from enseigne.network.access import AuthenticatedRequest, access_for

from . import evidence, selectors, services
from .models import IdentityPolicy, Person, RecordLink
from .public_ids import pks_of


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


class MatchingForm(forms.Form):
    """The model's thresholds and schedule. Fields are read as text: the service checks
    them (``models.thresholds_error``) and names the wrong one."""

    match_threshold = forms.CharField(
        label=gettext_lazy("Merge automatically from (a number between 0 and 1)"),
        help_text=gettext_lazy(
            "Two records whose match score reaches this value become one person without "
            "anyone checking. Higher: fewer automatic merges, more pairs in the review "
            "queue, fewer mistakes. 0.5 means the model finds it more likely than not that "
            "the two records are the same customer."
        ),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "class": "form-control"}),
    )
    review_threshold = forms.CharField(
        label=gettext_lazy("Send to the review queue from (a number between 0 and 1)"),
        help_text=gettext_lazy(
            "Pairs scoring from this value up to the merge threshold wait in the review "
            "queue for someone at HQ to decide. Higher: a shorter queue, but look-alikes "
            "below it are never shown. It must stay below the merge threshold."
        ),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "class": "form-control"}),
    )
    model_schedule = forms.ChoiceField(
        label=gettext_lazy("Run the matching"),
        choices=IdentityPolicy.Schedule.choices,
        widget=forms.RadioSelect,
        required=False,
    )
    model_weekday = forms.ChoiceField(
        label=gettext_lazy("Day of the weekly run"),
        choices=IdentityPolicy.Weekday.choices,
        required=False,
        widget=forms.Select(attrs={"class": "form-select"}),
        help_text=gettext_lazy(
            "Scheduled runs start around 4 a.m. (the network's time zone), when the stores "
            "are closed."
        ),
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
    people = list(
        Person.objects.filter(pk__in=pks_of(request.POST.getlist("people"))).filter(
            pk__in=RecordLink.objects.filter(unit_path__startswith=root).values("person_id")
        )
    )
    reason = request.POST.get("reason", "").strip()
    back = f"{reverse('person_search')}?{urlencode({'q': request.POST.get('q', '')})}"
    if len(people) < 2:
        messages.error(request, _("Choose at least two people to merge."))
        return redirect(back)
    if not request.POST.get("confirmed") or not reason:
        # First the summary of what would become one person, and why (kept in the history).
        summaries = selectors.people_summaries(request.user, people)
        stores = [unit for p in people for unit in summaries[p.pk]["units"]]
        return render(
            request,
            "identity/merge_confirm.html",
            {
                "people": [(p, summaries[p.pk]) for p in people],
                "records": RecordLink.objects.filter(person__in=people).count(),
                "shared_stores": sorted({u for u in stores if stores.count(u) > 1}),
                "reason": reason,
                "q": request.POST.get("q", ""),
                "missing_reason": bool(request.POST.get("confirmed")) and not reason,
            },
        )
    try:
        change = services.merge(actor=request.user, persons=people, reason=reason)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _messages_of(exc))
        return redirect(back)
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


def _matching_form(policy: IdentityPolicy, data=None) -> MatchingForm:
    return MatchingForm(
        data,
        initial={
            "match_threshold": policy.match_threshold,
            "review_threshold": policy.review_threshold,
            "model_schedule": policy.model_schedule,
            "model_weekday": policy.model_weekday,
        },
    )


def _settings_page(
    request: AuthenticatedRequest,
    root: str,
    *,
    form: PolicyForm | None = None,
    matching: MatchingForm | None = None,
) -> HttpResponse:
    policy = selectors.policy_of_root(root)
    runs = selectors.model_runs(root)
    history = selectors.matching_history(root)
    return render(
        request,
        "identity/settings.html",
        {
            "form": form
            or PolicyForm(initial={"mode": policy.mode, "gmail_rules": policy.gmail_rules}),
            "matching": matching or _matching_form(policy),
            "policy": policy,
            "is_admin": access_for(request.user).is_hq_admin,
            "last_run": runs[0] if runs else None,
            "runs": runs,
            "run_active": bool(runs) and runs[0].is_under_way(timezone.now()),
            "history": history,
        },
    )


@login_required
def identity_settings(request: AuthenticatedRequest) -> HttpResponse:
    root = selectors.get_identity_root_for_user(request.user)
    if request.method != "POST":
        return _settings_page(request, root)
    form = PolicyForm(request.POST)
    if form.is_valid():
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
    return _settings_page(request, root, form=form)


@login_required
@require_POST
def matching_settings(request: AuthenticatedRequest) -> HttpResponse:
    root = selectors.get_identity_root_for_user(request.user)
    form = MatchingForm(request.POST)
    if form.is_valid():
        try:
            services.matching_settings_update(
                actor=request.user,
                match_threshold=form.cleaned_data["match_threshold"],
                review_threshold=form.cleaned_data["review_threshold"],
                model_schedule=form.cleaned_data["model_schedule"],
                model_weekday=form.cleaned_data["model_weekday"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("The matching settings were saved."))
            return redirect("identity_settings")
    return _settings_page(request, root, matching=form)


@login_required
@require_POST
def model_run_start(request: AuthenticatedRequest) -> HttpResponse:
    selectors.get_identity_root_for_user(request.user)
    try:
        services.model_run_request(actor=request.user)
    except ValidationError as exc:
        messages.error(request, _messages_of(exc))
    else:
        messages.success(
            request,
            _(
                "The matching is queued. It takes a few minutes for a large base: this page "
                "shows its progress and its figures."
            ),
        )
    return redirect("identity_settings")


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
