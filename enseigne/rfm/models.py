"""RFM scores: each store's buyers ranked among the store's buyers (one row a record), and
the network's buyers ranked among the network's (one row a person, HQ only).

See ``scoring`` for the definitions. ``CutPoints`` keeps, per store and per network, the
values at which each score starts in the last full run: the incremental update scores the
buyers an import touched against them, so it reads only those buyers' orders.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from enseigne.contacts.models import Contact
from enseigne.identity.models import Person
from enseigne.network.models import Network

from .groups import Group

DEFAULT_WINDOW_MONTHS = 24
MAX_WINDOW_MONTHS = 120


class RfmPolicy(models.Model):
    """HQ's RFM settings for its network (one row per network; none means the defaults)."""

    network = models.OneToOneField(Network, on_delete=models.CASCADE, related_name="rfm")
    window_months = models.PositiveSmallIntegerField(
        _("purchases counted over the last (months)"), default=DEFAULT_WINDOW_MONTHS
    )
    # {"r1f1": group key, …, "r5f5": …}; empty: the default grid (groups.DEFAULT_GRID).
    grid = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )


class Scores(models.Model):
    """What both score tables hold."""

    last_purchase_at = models.DateTimeField(_("last purchase"))
    purchases = models.PositiveIntegerField(_("purchases"))
    net = models.DecimalField(_("net amount"), max_digits=14, decimal_places=2)
    recency = models.PositiveSmallIntegerField("R")
    frequency = models.PositiveSmallIntegerField("F")
    monetary = models.PositiveSmallIntegerField("M")
    group = models.CharField(_("RFM group"), max_length=24, choices=Group.choices)
    # When the row last changed (a run that finds the same scores leaves the row alone).
    computed_at = models.DateTimeField()

    class Meta:
        abstract = True


class RecordScore(Scores):
    """A buyer record's scores among its store's buyers (unit-owned, row-level security)."""

    contact = models.OneToOneField(
        Contact, on_delete=models.CASCADE, primary_key=True, related_name="+", db_constraint=False
    )
    unit_path = models.CharField(max_length=255)

    class Meta:
        indexes = [models.Index(fields=["group"], name="rfm_recordscore_group")]


class PersonScore(Scores):
    """A buyer person's scores among the network's buyers (HQ-only rows). A record not
    linked to a person yet is its own person: ``contact`` is set instead of ``person``."""

    # The person's id, or minus the record's id when the record is not linked yet: the
    # key the runs join on, and the primary key (no surrogate id: one index less to keep
    # on every row the runs write; docs/decisions.md "RFM").
    key = models.BigIntegerField(primary_key=True, serialize=False)
    person = models.OneToOneField(
        Person, null=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    # Unique where set (a record not linked yet): the index holds those rows only, not a
    # NULL for every linked person's row; erasing a record still finds its row by index.
    contact = models.ForeignKey(
        Contact,
        null=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    # The network root's path.
    unit_path = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(person__isnull=False, contact__isnull=True)
                | models.Q(person__isnull=True, contact__isnull=False),
                name="rfm_personscore_one_key",
            ),
            models.UniqueConstraint(
                fields=["contact"],
                condition=models.Q(contact__isnull=False),
                name="rfm_personscore_contact",
            ),
        ]
        indexes = [models.Index(fields=["group"], name="rfm_personscore_group")]


class CutPoints(models.Model):
    """The last full run's thresholds for one store (records) or one network (persons):
    score k (2…5) starts at ``recency[k-2]`` days or fewer, ``frequency[k-2]`` purchases
    or more, ``monetary[k-2]`` cents or more; ``None`` where no buyer reached score k; the
    fifth value is the best buyer's (``scoring.cut_score_sql``)."""

    class Level(models.TextChoices):
        RECORD = "record", _("Store")
        PERSON = "person", _("Network")

    level = models.CharField(max_length=6, choices=Level.choices)
    # The store's path (record level) or the network root's (person level).
    unit_path = models.CharField(max_length=255)
    as_of = models.DateTimeField()
    window_start = models.DateTimeField()
    buyers = models.PositiveIntegerField()
    recency = models.JSONField()
    frequency = models.JSONField()
    monetary = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "unit_path"], name="rfm_cutpoints_unique")
        ]


class PendingBuyer(models.Model):
    """A buyer whose orders a committed transaction wrote and whose scores are not refreshed
    yet (``hooks``). Written in the writer's transaction, so a rolled-back one leaves none;
    deleted by the refresh that scores it, in the same transaction, so a worker that dies
    half-way leaves it for the next one. A buyer may be queued many times (no unique key: a
    writer never waits on another writer or on a running refresh)."""

    id = models.BigAutoField(primary_key=True)
    contact_id = models.BigIntegerField()
    unit_path = models.CharField(max_length=255)


class RefreshWake(models.Model):
    """One row: whether a refresh of the pending buyers is queued and not started yet, so
    that the commits of a busy minute queue one task, not one each (``hooks``)."""

    id = models.PositiveSmallIntegerField(primary_key=True)
    queued = models.BooleanField(default=False)


class GroupSnapshot(models.Model):
    """A buyer record's scores and group at the end of a month (unit-owned): the
    month-to-month migration between groups ("who moved from Loyal to At risk") joins two
    months on the record. The nightly snapshot (``snapshots.snapshot_month``) replaces the
    current month's rows, so a past month keeps its last night's picture."""

    month = models.DateField()  # the month's first day
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    unit_path = models.CharField(max_length=255)
    recency = models.PositiveSmallIntegerField("R")
    frequency = models.PositiveSmallIntegerField("F")
    net = models.DecimalField(max_digits=14, decimal_places=2)
    group = models.CharField(max_length=24, choices=Group.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["month", "contact"], name="rfm_groupsnapshot_unique")
        ]
        indexes = [models.Index(fields=["unit_path", "month"], name="rfm_groupsnapshot_unit")]
