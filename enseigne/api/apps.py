from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "enseigne.api"
    label = "api"
