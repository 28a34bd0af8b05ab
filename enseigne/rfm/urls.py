from django.urls import path

from enseigne.rfm import views

urlpatterns = [
    path("rfm/", views.rfm_overview, name="rfm_overview"),
    path("rfm/units/<uuid:public_id>/", views.rfm_unit, name="rfm_unit"),
    path("hq/rfm/", views.rfm_settings, name="rfm_settings"),
]
