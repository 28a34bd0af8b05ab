from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "enseigne.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"
