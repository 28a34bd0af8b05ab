"""HQ and unit pages: thin views over selectors and services."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from enseigne.lib.forms import form_errors
from enseigne.network import selectors, services
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.forms import (
    CapabilityRuleForm,
    MembershipForm,
    NodeCreateForm,
    RoleCreateForm,
    UnitProfileForm,
    UserCreateForm,
)
from enseigne.network.models import CapabilityRule, Membership


def security_txt(request: HttpRequest) -> HttpResponse:
    """RFC 9116: how to report a vulnerability, from the deployer's settings."""
    if not settings.SECURITY_CONTACT:
        raise Http404
    expires = settings.SECURITY_TXT_EXPIRES
    if expires is None:
        expires_at = (timezone.now() + dt.timedelta(days=180)).replace(microsecond=0)
    else:
        expires_at = dt.datetime.combine(expires, dt.time(23, 59, 59), tzinfo=dt.UTC)
    lines = [f"Contact: {contact}" for contact in settings.SECURITY_CONTACT]
    lines.append(f"Expires: {expires_at.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}")
    lines.append(f"Preferred-Languages: {settings.SECURITY_TXT_LANGUAGES}")
    lines.append(f"Canonical: {settings.BASE_URL.rstrip('/')}/.well-known/security.txt")
    if settings.SECURITY_TXT_POLICY:
        lines.append(f"Policy: {settings.SECURITY_TXT_POLICY}")
    response = HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response


@login_required
def home(request: HttpRequest) -> HttpResponse:
    unit = selectors.home_unit_for(request.user)
    if unit is not None:
        return redirect("unit_home", public_id=unit.public_id)
    if access_for(request.user).grants:
        return redirect("hq_home")
    return render(request, "network/no_access.html", status=403)


@login_required
@require_POST
def node_create(request: HttpRequest) -> HttpResponse:
    if not access_for(request.user).is_hq_admin:
        raise PermissionDenied
    form = NodeCreateForm(
        request.POST, parents=selectors.nodes_for_user(request.user).exclude(kind="unit")
    )
    if form.is_valid():
        try:
            node = services.node_create(
                actor=request.user,
                parent=form.cleaned_data["parent"],
                kind=form.cleaned_data["kind"],
                name=form.cleaned_data["name"],
                code=form.cleaned_data["code"],
                profile={"city": form.cleaned_data["city"]}
                if form.cleaned_data["kind"] == "unit"
                else None,
            )
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            messages.success(request, _("%(name)s was added.") % {"name": node.name})
            return redirect("hq_home")
    for error in form.errors.values():
        messages.error(request, " ".join(error))
    return redirect("hq_home")


@login_required
def unit_edit(request: HttpRequest, public_id) -> HttpResponse:
    unit = selectors.get_unit_for_user(request.user, public_id, Capability.MANAGE_NETWORK)
    initial = {"tags": ", ".join(t.name for t in unit.tags.all())}
    form = UnitProfileForm(request.POST or None, instance=unit.profile, initial=initial)
    variables = selectors.unit_variables()
    if request.method == "POST" and form.is_valid():
        data = {f: form.cleaned_data[f] for f in UnitProfileForm.Meta.fields}
        data["variables"] = {v.key: request.POST.get(f"var_{v.key}", "").strip() for v in variables}
        unit.profile.refresh_from_db()
        try:
            services.unit_profile_update(
                actor=request.user,
                unit=unit,
                data=data,
                tags=[t for t in form.cleaned_data["tags"].split(",") if t.strip()],
            )
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            messages.success(request, _("The unit profile was saved."))
            return redirect("unit_home", public_id=unit.public_id)
    values = unit.profile.variables
    return render(
        request,
        "network/unit_edit.html",
        {
            "unit": unit,
            "form": form,
            "variables": [(v, values.get(v.key, "")) for v in variables],
        },
    )


@login_required
def users(request: HttpRequest) -> HttpResponse:
    people = selectors.users_for_admin(request.user)
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.user_create_with_membership(
                actor=request.user,
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                password=data["password"],
                node=data["node"],
                role=data["role"],
            )
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            messages.success(request, _("%(email)s can now log in.") % {"email": user.email})
            return redirect("users")
    return render(request, "network/users.html", {"people": people, "form": form})


@login_required
def user_detail(request: HttpRequest, public_id) -> HttpResponse:
    person = selectors.get_user_for_admin(request.user, public_id)
    form = MembershipForm(request.POST or None)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "grant" and form.is_valid():
                services.membership_grant(
                    actor=request.user,
                    user=person,
                    node=form.cleaned_data["node"],
                    role=form.cleaned_data["role"],
                )
                messages.success(request, _("The role was granted."))
                return redirect("user_detail", public_id=person.public_id)
            if action == "revoke":
                membership = (
                    Membership.objects.filter(user=person, pk=request.POST.get("membership"))
                    .select_related("node", "role", "user")
                    .first()
                )
                if membership is not None:
                    services.membership_revoke(actor=request.user, membership=membership)
                    messages.success(request, _("The role was removed."))
                return redirect("user_detail", public_id=person.public_id)
            if action in {"activate", "deactivate"}:
                services.user_set_active(
                    actor=request.user, user=person, active=action == "activate"
                )
                return redirect("user_detail", public_id=person.public_id)
        except ValidationError as exc:
            form_errors(form, exc)
    return render(
        request,
        "network/user_detail.html",
        {
            "person": person,
            "memberships": selectors.memberships_of(person),
            "form": form,
        },
    )


@login_required
def roles(request: HttpRequest) -> HttpResponse:
    role_list = list(selectors.roles_for_admin(request.user))
    form = RoleCreateForm(request.POST or None)
    rule_form = CapabilityRuleForm(request.POST or None, prefix="rule")
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "create_role" and form.is_valid():
                services.role_create(actor=request.user, **form.cleaned_data)
                messages.success(request, _("The role was created."))
                return redirect("roles")
            if action == "set_capabilities":
                role = next((r for r in role_list if str(r.pk) == request.POST.get("role")), None)
                if role is not None:
                    services.role_set_capabilities(
                        actor=request.user,
                        role=role,
                        capabilities=request.POST.getlist("capabilities"),
                    )
                    messages.success(
                        request,
                        _("The capabilities of %(role)s were saved.") % {"role": role.label},
                    )
                return redirect("roles")
            if action == "add_rule" and rule_form.is_valid():
                services.capability_rule_add(actor=request.user, **rule_form.cleaned_data)
                messages.success(request, _("The rule was added."))
                return redirect("roles")
            if action == "remove_rule":
                rule = (
                    CapabilityRule.objects.filter(pk=request.POST.get("rule"))
                    .select_related("node")
                    .first()
                )
                if rule is not None:
                    services.capability_rule_remove(actor=request.user, rule=rule)
                return redirect("roles")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    capabilities = Capability.choices
    matrix = [
        (
            role,
            [
                (key, label, key in {g.capability for g in role.grants.all()})
                for key, label in capabilities
            ],
        )
        for role in role_list
    ]
    return render(
        request,
        "network/roles.html",
        {
            "matrix": matrix,
            "capabilities": capabilities,
            "form": form,
            "rule_form": rule_form,
            "rules": CapabilityRule.objects.select_related("node", "role", "unit_tag").order_by(
                "node__path"
            ),
        },
    )


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    events = selectors.audit_events_for_admin(request.user)[:200]
    return render(request, "network/audit.html", {"events": events})
