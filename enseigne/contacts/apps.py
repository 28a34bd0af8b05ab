from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "enseigne.contacts"
    label = "contacts"
