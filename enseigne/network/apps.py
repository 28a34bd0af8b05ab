from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "enseigne.network"
    label = "network"
