from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "enseigne.analytics"
    label = "analytics"
    verbose_name = "Analytics"
