"""Personas (issue 21): HQ's ordered multi-criteria rules over its network's customers.

Each record belongs to the first persona (in HQ's order) whose rules it matches; each
person to the first persona any of its records matches — the least position among its
records' personas (a record not linked yet is its own person). The rules are segment rule
trees (``contacts.segments``), compiled as HQ's author of the persona."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from enseigne.contacts.models import Contact
from enseigne.identity.models import Person
from enseigne.network.models import Network


class Persona(models.Model):
    """One persona of a network (HQ's rows: every unit may read the names)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="personas")
    name = models.CharField(_("name"), max_length=80)
    description = models.CharField(_("description"), max_length=300, blank=True)
    # First match wins: the lowest position is tried first.
    position = models.PositiveIntegerField()
    rules = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["network", "name"], name="personas_persona_name")
        ]

    def __str__(self) -> str:
        return self.name


class PersonaRecord(models.Model):
    """A record's persona (unit-owned, row-level security)."""

    contact = models.OneToOneField(
        Contact, on_delete=models.CASCADE, primary_key=True, related_name="+", db_constraint=False
    )
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="+")
    unit_path = models.CharField(max_length=255)

    class Meta:
        indexes = [models.Index(fields=["persona"], name="personas_record_persona")]


class PersonaPerson(models.Model):
    """A person's persona (HQ-only rows); a record not linked yet is its own person."""

    person = models.OneToOneField(
        Person, null=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    contact = models.OneToOneField(
        Contact, null=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="+")
    # The network root's path.
    unit_path = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(person__isnull=False, contact__isnull=True)
                | models.Q(person__isnull=True, contact__isnull=False),
                name="personas_person_one_key",
            )
        ]
        indexes = [models.Index(fields=["persona"], name="personas_person_persona")]


class PersonaCount(models.Model):
    """How many records of a store (``RECORD``) or persons of the network (``PERSON``,
    ``unit_path`` the root's: HQ's rows) a persona had in a month: the last assignment of
    the month wins, so the months draw the personas' evolution."""

    class Level(models.TextChoices):
        RECORD = "record", _("Store")
        PERSON = "person", _("Network")

    month = models.DateField()  # the month's first day
    level = models.CharField(max_length=6, choices=Level.choices)
    unit_path = models.CharField(max_length=255)
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="+")
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month", "level", "unit_path", "persona"], name="personas_count_unique"
            )
        ]
        indexes = [models.Index(fields=["unit_path", "month"], name="personas_count_unit")]
