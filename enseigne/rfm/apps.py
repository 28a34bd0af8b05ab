from django.apps import AppConfig


class RfmConfig(AppConfig):
    name = "enseigne.rfm"
    label = "rfm"
    verbose_name = "RFM"
