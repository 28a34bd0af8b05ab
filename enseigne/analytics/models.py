"""Read models the dashboards stand on: daily rollups of the events log and of the contact bases.

The events log (``delivery.Event``) is the truth; these tables are derived from it by
``rollups.refresh`` and can be rebuilt from it at any time (``enseigne refresh_stats --from``).
"""

from __future__ import annotations

from django.db import models

from enseigne.contacts.models import Channel


class DailyStat(models.Model):
    """What one unit's messages of one campaign on one channel did on one day (network time zone).

    ``clickers`` counts the recipients whose first counted click on the campaign fell that
    day, so summing days gives the campaign's unique clickers exactly. ``cost`` is the
    unit's share of what the sent messages cost (HQ's share of national relays excluded).
    Conversions with no campaign to credit have ``campaign_id`` NULL.
    """

    day = models.DateField()
    campaign_id = models.BigIntegerField(null=True, blank=True)
    unit_id = models.BigIntegerField()
    unit_path = models.CharField(max_length=255)
    channel = models.CharField(max_length=8, choices=Channel.choices, blank=True)
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    clickers = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=4, default=0)

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="dailystat_day"),
            models.Index(fields=["campaign_id", "day"], name="dailystat_campaign"),
            models.Index(fields=["unit_path", "day"], name="dailystat_unit"),
        ]


class UnitDay(models.Model):
    """A unit's contact base at the end of a day: its size and how many may be written to."""

    day = models.DateField()
    unit_id = models.BigIntegerField()
    unit_path = models.CharField(max_length=255)
    contacts = models.PositiveIntegerField(default=0)
    email_ok = models.PositiveIntegerField(default=0)
    sms_ok = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["unit_id", "day"], name="unitday_unique")]
        indexes = [models.Index(fields=["unit_path", "day"], name="unitday_unit")]


class RollupState(models.Model):
    """One row: from when on the rollups may be out of date (the next pass rebuilds from that day)."""

    dirty_from = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)


# People, not records (issue 20). Each rollup pass counts them once for HQ; every row is
# filed under the network's root path, so row-level security shows it to HQ's scope only
# (a store's scope, even in the "one controller" mode, never reads these rows).


class NetworkPeople(models.Model):
    """The network's base counted in records and in people, at the last rollup pass."""

    unit_path = models.CharField(max_length=255, unique=True)  # the network root
    # Every contact record of every unit: prospects and customers, with or without consent.
    records = models.PositiveIntegerField(default=0)
    # The distinct persons those records are linked to (a record not linked yet counts as one).
    people = models.PositiveIntegerField(default=0)
    # Persons with records in two units or more.
    shared = models.PositiveIntegerField(default=0)
    # Persons who are existing customers (a record marked so) in two units or more.
    cross_customers = models.PositiveIntegerField(default=0)
    counted_at = models.DateTimeField()


class CrossShopping(models.Model):
    """Persons who are customers of both units (``left`` <= ``right``; equal: of that unit)."""

    unit_path = models.CharField(max_length=255)  # the network root
    left_unit_id = models.BigIntegerField()
    right_unit_id = models.BigIntegerField()
    people = models.PositiveIntegerField()
    # On the diagonal: how many of the unit's customers are customers of another unit too.
    elsewhere = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["left_unit_id", "right_unit_id"], name="crossshopping_pair"
            ),
            models.CheckConstraint(
                condition=models.Q(left_unit_id__lte=models.F("right_unit_id")),
                name="crossshopping_ordered",
            ),
        ]


class CampaignReach(models.Model):
    """How many distinct persons a campaign's sent messages reached (HQ's figure)."""

    campaign_id = models.BigIntegerField(unique=True)
    unit_path = models.CharField(max_length=255)  # the network root
    sent = models.PositiveIntegerField(default=0)
    people = models.PositiveIntegerField(default=0)
    counted_at = models.DateTimeField()
