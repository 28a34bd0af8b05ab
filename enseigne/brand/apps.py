from django.apps import AppConfig


class BrandConfig(AppConfig):
    name = "enseigne.brand"
    label = "brand"
