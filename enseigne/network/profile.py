"""The signed-in user's own page: who they are, and their API tokens (create, revoke)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from enseigne.network import selectors
from enseigne.network.models import ApiToken, TokenScope
from enseigne.network.tokens import (
    DEFAULT_LIFETIME_DAYS,
    LIFETIME_DAYS,
    get_token_for_user,
    token_create,
    token_revoke,
    tokens_for_user,
)
from enseigne.network.views import form_errors

_days_label = lazy(
    lambda days: ngettext("%(days)d day", "%(days)d days", days) % {"days": days}, str
)


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=ApiToken._meta.get_field("name").max_length,
        required=False,
        help_text=gettext_lazy("What it is for, e.g. “Till of the Lyon store”."),
    )
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scope"),
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "A token never does more than your role allows. Read only forbids every write."
        ),
    )
    lifetime_days = forms.TypedChoiceField(
        label=gettext_lazy("Expires after"),
        choices=[(days, _days_label(days)) for days in LIFETIME_DAYS],
        coerce=int,
        initial=DEFAULT_LIFETIME_DAYS,
    )


def _state(token: ApiToken, now) -> str:
    if token.revoked_at:
        return "revoked"
    return "expired" if token.expires_at <= now else "active"


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            token, new_key = token_create(
                user=request.user,
                actor=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                lifetime_days=form.cleaned_data["lifetime_days"],
            )
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            form = TokenForm()
    now = timezone.now()
    labels = dict(TokenScope.choices)
    tokens = [
        (t, _state(t, now), [labels.get(s, s) for s in t.scopes])
        for t in tokens_for_user(request.user)
    ]
    response = render(
        request,
        "network/profile.html",
        {
            "form": form,
            "new_key": new_key,
            "tokens": tokens,
            "memberships": selectors.memberships_of(request.user),
        },
    )
    if new_key:
        response["Cache-Control"] = "no-store"  # the key is shown once, never kept
    return response


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, public_id) -> HttpResponse:
    token = get_token_for_user(request.user, public_id)
    if token_revoke(actor=request.user, token=token):
        messages.success(
            request, _("The token “%(name)s” is revoked.") % {"name": token.name or token.prefix}
        )
    return redirect("profile")
