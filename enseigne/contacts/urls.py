from django.urls import path

from enseigne.contacts import views

urlpatterns = [
    path("units/<uuid:public_id>/", views.unit_home, name="unit_home"),
    path("contacts/", views.contact_list, name="contact_list"),
    path("contacts/new/", views.contact_new, name="contact_new"),
    path("contacts/export.csv", views.contact_export, name="contact_export"),
    path("contacts/<uuid:public_id>/", views.contact_detail, name="contact_detail"),
    path("contacts/<uuid:public_id>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<uuid:public_id>/consent/", views.contact_consent, name="contact_consent"),
    path("contacts/<uuid:public_id>/data.json", views.contact_data, name="contact_data"),
    path("contacts/<uuid:public_id>/erase/", views.contact_erase, name="contact_erase"),
    path("imports/", views.import_list, name="import_list"),
    path("imports/<uuid:public_id>/", views.import_detail, name="import_detail"),
    path("imports/<uuid:public_id>/progress/", views.import_progress, name="import_progress"),
    path(
        "imports/<uuid:public_id>/rejections.csv", views.import_rejections, name="import_rejections"
    ),
    path("segments/", views.segment_list, name="segment_list"),
    path("segments/new/", views.segment_edit, name="segment_new"),
    path("segments/count/", views.segment_preview_count, name="segment_count"),
    path("segments/<uuid:public_id>/", views.segment_edit, name="segment_detail"),
    path("segments/<uuid:public_id>/delete/", views.segment_delete, name="segment_delete"),
]
