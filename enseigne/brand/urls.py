from django.urls import path

from enseigne.brand import views

urlpatterns = [
    path("brand/assets/", views.asset_library, name="asset_library"),
    path("brand/assets/new/<slug:kind>/", views.asset_new, name="asset_new"),
    path("brand/assets/<uuid:public_id>/", views.asset_detail, name="asset_detail"),
    path("brand/assets/<uuid:public_id>/delete/", views.asset_delete, name="asset_delete"),
    path("brand/templates/", views.template_list, name="template_list"),
    path("brand/templates/new/", views.template_new, name="template_new"),
    path("brand/templates/preview/", views.template_preview, name="template_preview"),
    path("brand/templates/<uuid:public_id>/", views.template_edit, name="template_edit"),
    path(
        "brand/templates/<uuid:public_id>/personalise/",
        views.template_personalise,
        name="template_personalise",
    ),
    path("brand/templates/<uuid:public_id>/preview/", views.local_preview, name="local_preview"),
    path("brand/templates/<uuid:public_id>/sms-length/", views.sms_length, name="sms_length"),
    path("brand/local/<uuid:public_id>/", views.local_version, name="local_version"),
    path("brand/guardrails/", views.guardrails, name="guardrails"),
    path("media/assets/<path:path>", views.asset_file, name="asset_file"),
]
