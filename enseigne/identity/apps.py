from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "enseigne.identity"
    label = "identity"
    verbose_name = "Identity"
