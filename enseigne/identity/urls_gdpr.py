"""HQ's per-person GDPR URLs (names ``identity:gdpr-…``), to include under identity's URLs."""

from django.urls import path

from . import gdpr_views

app_name = "identity"

urlpatterns = [
    path("<uuid:public_id>/export.json", gdpr_views.person_export, name="gdpr-export"),
    path("<uuid:public_id>/erase/", gdpr_views.person_erase, name="gdpr-erase"),
]
