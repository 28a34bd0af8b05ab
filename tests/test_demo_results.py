"""The demo's year of results tells the story the README promises."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from enseigne.analytics import selectors
from enseigne.analytics.models import DailyStat
from enseigne.delivery.models import Event
from enseigne.demo import seed
from enseigne.network.models import User

pytestmark = pytest.mark.slow  # seeds the demo's whole year


def test_demo_year_ranks_lyon_first_and_flags_marseille_on_sms(db):
    summary = seed.seed(contacts_total=4000, purchases=False)
    assert summary["events"] > 10_000 and summary["sales"] > 50
    hq = User.objects.get(email="siege@maison-lumiere.test")
    board = selectors.network_dashboard(hq, days=365, kpi="email_click_rate")
    assert board["rows"][0]["unit"].code == "lyon"
    marseille = next(r for r in board["rows"] if r["unit"].code == "marseille")
    assert ("sms_click_rate", "worse") in [(k.key, v) for k, v in marseille["flags"]]
    # The rollups hold exactly what the events say.
    sent = Event.objects.filter(kind=Event.Kind.SENT).count()
    assert DailyStat.objects.aggregate(s=Sum("sent"))["s"] == sent
    region = User.objects.get(email="region.sud-est@maison-lumiere.test")
    assert {r["unit"].code for r in selectors.network_dashboard(region, days=365)["rows"]} == {
        "lyon",
        "marseille",
        "grenoble",
    }
