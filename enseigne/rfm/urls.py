from django.urls import path

from enseigne.rfm import views

urlpatterns = [
    # ``?unit=``: one unit or region the user sees (404 otherwise).
    path("rfm/", views.rfm_overview, name="rfm_overview"),
    path("hq/rfm/", views.rfm_settings, name="rfm_settings"),
]
