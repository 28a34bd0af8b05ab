"""The journey flow editor (issue 22): plain forms give the same flow JSON an expert would
write, every problem is shown beside the step it names, nothing typed is lost, and hostile
input is refused or shown as text."""

from __future__ import annotations

import copy
import json

import pytest
from django.http import QueryDict

from enseigne.contacts.models import CustomAttribute
from enseigne.journeys import editor, services
from enseigne.journeys.models import JourneyTemplate, JourneyVersion
from tests.campaign_helpers import email_template, sms_template
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
CUSTOMERS = {"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]}


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)


@pytest.fixture
def design(world):
    hello = email_template(world, "Bienvenue")
    text = sms_template(world, "Relance")
    template = services.journey_template_create(
        actor=world.hq_admin, owner=world.root, name="Welcome"
    )
    return template, str(hello.public_id), str(text.public_id)


def every_step(hello: str, text: str) -> dict:
    """A flow with every kind of step and both kinds of wait."""
    return {
        "trigger": {"kind": "consent", "channel": "email"},
        "goal": {"kind": "purchase"},
        "start": "hello",
        "steps": {
            "hello": {"kind": "send_email", "template": hello, "next": "pause"},
            "pause": {"kind": "wait", "days": 3, "hours": 2, "minutes": 5, "next": "check"},
            "check": {"kind": "condition", "rules": CUSTOMERS, "yes": "monday", "no": "ab"},
            "monday": {"kind": "wait", "until": {"weekday": 0, "time": "09:30"}, "next": "out"},
            "ab": {
                "kind": "random",
                "branches": [
                    {"share": 20, "next": "sms"},
                    {"share": 30, "next": "noon"},
                    {"share": 50, "next": "out"},
                ],
            },
            "noon": {"kind": "wait", "until": {"time": "12:00"}, "next": "out"},
            "sms": {"kind": "send_sms", "template": text},
            "out": {"kind": "exit"},
        },
    }


def through_forms(flow: dict, user, owner_path: str) -> dict | None:
    """The flow read into the editor's forms, posted back and turned into JSON again."""
    trigger, steps = editor.values_of(flow)
    choices = editor.choices_for(user, owner_path)
    trigger_form, step_forms = editor.build_forms(trigger, steps, choices, bound=True)
    made = editor.flow_of(trigger_form, step_forms)
    if made is None:
        problems = {f.prefix: f.errors for f in [trigger_form, *step_forms] if f.errors}
        raise AssertionError(problems)
    return made


def section(page: str, step: str) -> str:
    """The editor's fieldset of ``step``."""
    start = page.index(f'data-step="{step}"')
    return page[start : page.index("</fieldset>", start)]


def as_post(flow: dict, command: str = "publish", **extra) -> dict:
    """The editor page's POST for ``flow`` (as the page would draw and post it)."""
    trigger, steps = editor.values_of(flow)
    data = {"action": "edit", "editor": command, "step-count": str(len(steps))}
    data.update({f"trigger-{k}": v for k, v in trigger.items()})
    for i, step in enumerate(steps):
        data.update({f"step-{i}-{k}": v for k, v in step.items()})
    data.update({"settings-reentry": "never", "settings-holdout_percent": "0"})
    data.update(extra)
    return data


def test_every_step_kind_round_trips_through_the_forms(world, design):
    template, hello, text = design
    flow = every_step(hello, text)
    assert through_forms(flow, world.hq_admin, template.owner_path) == flow


@pytest.mark.parametrize(
    "trigger",
    [
        {"kind": "consent", "channel": "email"},
        {"kind": "consent", "channel": "sms"},
        {"kind": "date", "field": "birthday", "offset_days": 0},
        {"kind": "date", "field": "anniversary", "offset_days": -7},
        {"kind": "event", "event": "purchase"},
        {"kind": "event", "event": "first_purchase"},
        {"kind": "event", "event": "click"},
        {"kind": "segment", "rules": CUSTOMERS},
        {"kind": "inactivity", "days": 90},
    ],
)
def test_every_trigger_kind_round_trips(world, design, trigger):
    CustomAttribute.objects.create(key="anniversary", label="Anniversaire", kind="date")
    template, hello, _text = design
    flow = {
        "trigger": trigger,
        "start": "hello",
        "steps": {"hello": {"kind": "send_email", "template": hello}},
    }
    assert through_forms(flow, world.hq_admin, template.owner_path) == flow


def test_rfm_group_persona_and_category_triggers_keep_their_choice(world, design, monkeypatch):
    template, hello, _text = design
    offered = {
        "rfm_groups": [("champions", "Champions")],
        "personas": [("p-1", "Familles")],
        "categories": [("Shoes", "Shoes")],
        "campaigns": [("c-1", "Soldes")],
    }
    real = editor.choices_for

    def choices(user, owner_path):
        found = real(user, owner_path)
        for name, values in offered.items():
            setattr(found, name, values)
        return found

    monkeypatch.setattr(editor, "choices_for", choices)
    steps = {"hello": {"kind": "send_email", "template": hello}}
    for trigger in (
        {
            "kind": "segment",
            "rules": {
                "match": "all",
                "rules": [rfm := {"field": "rfm_group", "op": "equals", "value": "champions"}],
            },
        },
        {
            "kind": "segment",
            "rules": {
                "match": "all",
                "rules": [{"field": "persona", "op": "equals", "value": "p-1"}],
            },
        },
        {"kind": "event", "event": "category_purchase", "category": "Shoes"},
        {"kind": "event", "event": "click", "campaign": "c-1"},
    ):
        flow = {"trigger": trigger, "start": "hello", "steps": steps}
        assert through_forms(flow, world.hq_admin, template.owner_path) == flow
    values, _steps = editor.values_of(
        {"trigger": {"kind": "segment", "rules": {"match": "all", "rules": [rfm]}}}
    )
    assert (values["audience"], values["rfm_group"]) == ("rfm_group", "champions")


def test_the_editor_publishes_the_welcome_journey_and_its_settings(client, world, design):
    template, hello, text = design
    flow = every_step(hello, text)
    login(client, world.hq_admin)
    data = as_post(
        flow,
        **{
            "settings-reentry": "after",
            "settings-reentry_days": "30",
            "settings-holdout_percent": "10",
            "move_people": "on",
        },
    )
    response = client.post(f"/hq/journeys/{template.public_id}/", data)
    assert response.status_code == 302
    version = JourneyVersion.objects.get(template=template)
    assert version.flow == flow
    template.refresh_from_db()
    assert (template.reentry, template.reentry_days, template.holdout_percent) == ("after", 30, 10)
    # The page opens on the live flow: the forms hold it, ready to edit.
    page = client.get(f"/hq/journeys/{template.public_id}/").content.decode()
    assert 'name="step-0-name"' in page and 'value="hello"' in page
    assert 'id="flow-chart"' in page and "Wait until Monday 09:30" in page


def test_problems_are_shown_beside_their_step_and_nothing_typed_is_lost(client, world, design):
    template, hello, text = design
    flow = every_step(hello, text)
    flow["steps"]["ab"]["branches"][0]["share"] = 25  # 105 %
    login(client, world.hq_admin)
    url = f"/hq/journeys/{template.public_id}/"
    data = as_post(flow)
    page = client.post(url, data).content.decode()
    assert not JourneyVersion.objects.exists()
    assert "the branches&#x27; shares must add up to 100 %" in section(page, "ab")
    assert 'name="step-5-share_1" value="25"' in section(page, "ab")
    assert 'value="09:30"' in page  # the other steps as typed
    # An SMS template in an e-mail step (only an edited page sends it): named with its step.
    data["step-5-share_1"] = "20"
    data["step-0-template_email"] = text
    page = client.post(url, data).content.decode()
    assert not JourneyVersion.objects.exists()
    assert "its template “Relance” is for SMS" in section(page, "hello")
    data["step-0-template_email"] = "not-a-template"
    page = client.post(url, data).content.decode()
    assert "its template does not exist." in page
    data["step-0-template_email"] = hello
    assert client.post(url, data).status_code == 302
    assert JourneyVersion.objects.get().flow == every_step(hello, text)


def test_a_condition_rule_the_segment_builder_refuses_is_named_with_its_step(client, world, design):
    template, hello, text = design
    flow = every_step(hello, text)
    flow["steps"]["check"]["rules"] = {"match": "all", "rules": [{"field": "nope", "op": "x"}]}
    login(client, world.hq_admin)
    page = client.post(f"/hq/journeys/{template.public_id}/", as_post(flow)).content.decode()
    assert not JourneyVersion.objects.exists()
    assert "rule 1" in section(page, "check")


def test_commands_add_move_rename_and_remove_steps_without_publishing(client, world, design):
    template, hello, _text = design
    login(client, world.hq_admin)
    url = f"/hq/journeys/{template.public_id}/"
    data = {
        "action": "edit",
        "editor": "add",
        "add_kind": "send_email",
        "step-count": "0",
        "trigger-kind": "consent",
        "trigger-channel": "sms",
    }
    page = client.post(url, data).content.decode()
    assert 'value="email-1"' in page
    trigger, steps = editor.posted_values(QueryDict(mutable=True) | data)
    steps = editor.apply("add", steps, "send_email")
    steps = editor.apply("add", steps, "wait")
    assert [s["name"] for s in steps] == ["email-1", "wait-1"]
    assert steps[0]["next"] == "wait-1"  # the new step follows the one before
    steps = editor.apply("add", steps, "exit")
    assert steps[1]["next"] == "end-1"
    steps = editor.apply("up:2", steps, "")
    assert [s["name"] for s in steps] == ["email-1", "end-1", "wait-1"]
    steps = editor.apply("down:0", steps, "")
    assert [s["name"] for s in steps] == ["end-1", "email-1", "wait-1"]
    # Renaming a step follows into the targets that named it.
    posted = {"step-count": "3"}
    for i, step in enumerate(steps):
        posted.update({f"step-{i}-{k}": v for k, v in step.items()})
    posted["step-2-name"] = "pause"
    _trigger, renamed = editor.posted_values(posted)
    assert renamed[1]["next"] == "pause"
    # Removing it clears what led to it.
    after = editor.apply("remove:2", renamed, "")
    assert [s["name"] for s in after] == ["end-1", "email-1"] and after[1]["next"] == ""
    assert editor.apply("remove:99", after, "") == after
    assert editor.apply("explode", after, "") == after
    random = editor.apply("add", [], "random")
    for _ in range(6):
        random = editor.apply("branch:0", random, "")
    assert random[0]["branches"] == "5"
    assert not JourneyVersion.objects.exists()
    assert client.get(url).status_code == 200


def test_hostile_input_is_refused_or_drawn_as_text(client, world, design):
    template, hello, text = design
    login(client, world.hq_admin)
    url = f"/hq/journeys/{template.public_id}/"
    flow = every_step(hello, text)
    data = as_post(flow)
    data["step-0-next"] = "nowhere"  # a step that does not exist
    data["step-1-days"] = "99999999999999999999"
    data["step-2-name"] = "<script>alert(1)</script>"
    data["step-3-name"] = "a b"
    data["step-count"] = "100000"
    page = client.post(url, data).content.decode()
    assert response_ok(page)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Ensure this value is less than or equal to 366" in page
    assert "Use letters, digits, - and _" in page
    assert not JourneyVersion.objects.exists()
    # A NUL byte never reaches the editor: refused with the field's name.
    data = as_post(flow)
    data["step-3-name"] = "a\x00b"
    response = client.post(url, data)
    assert response.status_code == 400 and b"step-3-name" in response.content
    assert editor.posted_values({"step-count": "1", "step-0-name": "a\x00b"})[1] == [
        {"name": "ab", "was": "ab"}
    ]
    # Only the unknown target left: the flow's check names the step.
    data = as_post(flow)
    data["step-0-next"] = "nowhere"
    page = client.post(url, data).content.decode()
    assert "it leads to “nowhere”, which is not a step." in section(page, "hello")
    assert 'value="nowhere" selected' in page  # kept as chosen
    # Two steps of one name, and a command on a step that is not there.
    data = as_post(flow)
    data["step-1-name"] = "hello"
    page = client.post(url, data).content.decode()
    assert "Another step already has this name." in page
    assert client.post(url, as_post(flow, "remove:-1")).status_code == 200
    assert not JourneyVersion.objects.exists()


def response_ok(page: str) -> bool:
    return 'id="flow-editor"' in page


def test_a_store_designs_its_own_journey_with_the_editor_and_others_get_404(client, world):
    from enseigne.network.models import CapabilityRule

    CapabilityRule.objects.create(
        node=world.unit_a, capability="create_free_campaigns", effect=CapabilityRule.Effect.ALLOW
    )
    hello = email_template(world, "Bonjour")
    own = services.journey_template_create(actor=world.manager_a, owner=world.unit_a, name="Mine")
    flow = {
        "trigger": {"kind": "inactivity", "days": 60},
        "start": "hello",
        "steps": {"hello": {"kind": "send_email", "template": str(hello.public_id)}},
    }
    login(client, world.manager_a)
    assert client.post(f"/hq/journeys/{own.public_id}/", as_post(flow)).status_code == 302
    assert JourneyVersion.objects.get(template=own).flow == flow
    client.logout()
    login(client, world.manager_b)
    before = JourneyVersion.objects.count()
    assert client.post(f"/hq/journeys/{own.public_id}/", as_post(flow)).status_code == 404
    assert JourneyVersion.objects.count() == before


def test_the_editor_reads_in_french(client, world, design):
    template, hello, text = design
    services.journey_publish(actor=world.hq_admin, template=template, flow=every_step(hello, text))
    login(client, world.hq_admin)
    page = client.get(
        f"/hq/journeys/{template.public_id}/", HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    for words in (
        "Modifier le parcours",
        "Nom de l’étape",
        "Ajouter l’étape",
        "Publier ce parcours",
    ):
        assert words in page, words


def test_values_of_survives_any_json(world):
    for raw in (
        None,
        [],
        "x",
        {"steps": []},
        {"steps": {"a": 3}},
        {"trigger": 5, "steps": {"a": {"kind": "random", "branches": "x"}}},
        copy.deepcopy({"steps": {"a": {"kind": "wait", "until": "soon"}}}),
    ):
        trigger, steps = editor.values_of(raw)
        assert "kind" in trigger
        json.dumps(steps)
    assert JourneyTemplate.Reentry.NEVER == "never"


def test_a_command_draws_a_preview_and_template_names_are_text(client, world):
    hostile = email_template(world, "<img src=x onerror=alert(1)>")
    template = services.journey_template_create(
        actor=world.hq_admin, owner=world.root, name="Preview"
    )
    flow = {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "hello",
        "steps": {"hello": {"kind": "send_email", "template": str(hostile.public_id)}},
    }
    login(client, world.hq_admin)
    data = as_post(flow, "refresh", **{"settings-holdout_percent": "12"})
    page = client.post(f"/hq/journeys/{template.public_id}/", data).content.decode()
    preview = page[page.index('id="editor-preview"') :]
    assert "&lt;img src=x onerror=alert(1)&gt;" in preview
    assert "<img src=x" not in page
    assert 'name="settings-holdout_percent" value="12"' in page  # kept, not saved
    template.refresh_from_db()
    assert template.holdout_percent == 0 and not JourneyVersion.objects.exists()
    # A control group over 50 % is refused beside its field; nothing is published.
    data = as_post(flow, **{"settings-holdout_percent": "51"})
    page = client.post(f"/hq/journeys/{template.public_id}/", data).content.decode()
    assert "Ensure this value is less than or equal to 50" in page
    assert not JourneyVersion.objects.exists()


@pytest.mark.parametrize("event", ["purchase", "click"])
def test_a_condition_on_what_happened_since_entering_round_trips(world, design, event):
    """The editor offers the condition's other source (a purchase or a click since entering)
    and writes it as the flow reads it, with no rules."""
    template, hello, text = design
    flow = every_step(hello, text)
    check = next(k for k, s in flow["steps"].items() if s["kind"] == "condition")
    step = flow["steps"][check]
    flow["steps"][check] = {"kind": "condition", "since_entry": event, "yes": step["yes"]}
    flow["steps"][check]["no"] = step["no"]
    assert through_forms(flow, world.hq_admin, template.owner_path) == flow
