from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "enseigne.delivery"
    label = "delivery"
    verbose_name = "Delivery"
