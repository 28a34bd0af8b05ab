from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "enseigne.tracking"
    label = "tracking"
    verbose_name = "Tracking"
