from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "enseigne.demo"
    label = "demo"
