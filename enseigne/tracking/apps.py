from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "enseigne.tracking"
    label = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from anymail.signals import tracking

        from enseigne.tracking.services import esp_event

        def on_esp_event(sender, event, esp_name, **kwargs):  # noqa: ARG001
            esp_event(event, esp_name)

        tracking.connect(on_esp_event, weak=False, dispatch_uid="enseigne-esp-tracking")
