from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "enseigne.commerce"
    label = "commerce"
    verbose_name = "Commerce"
