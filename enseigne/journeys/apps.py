from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JourneysConfig(AppConfig):
    name = "enseigne.journeys"
    verbose_name = _("Journeys")
    default_auto_field = "django.db.models.BigAutoField"
