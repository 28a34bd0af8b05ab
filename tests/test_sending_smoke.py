import pytest

from enseigne.campaigns.models import Recipient
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.pipeline import run_campaign
from tests.campaign_helpers import contacts, launched, local_campaign
from tests.factories import build_world


@pytest.mark.django_db
def test_smoke():
    world = build_world()
    contacts(world.unit_a, 5)
    contacts(world.unit_a, 2, email=False, start=10)
    campaign = local_campaign(world)
    total = launched(world, campaign)
    assert total == 7
    locmem.outbox.clear()
    stats = run_campaign(campaign.pk)
    print(stats)
    assert len(locmem.outbox) == 5
    print(locmem.outbox[0].data.split(b"\r\n\r\n")[0].decode())
    assert Recipient.objects.filter(status="skipped", reason="no_consent").count() == 2
