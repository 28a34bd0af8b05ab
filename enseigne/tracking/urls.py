from django.urls import path

from enseigne.tracking import views

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("hooks/bounces/<str:key>/", views.inbound_bounce, name="inbound_bounce"),
    path("hooks/esp/<slug:esp>/", views.esp_tracking, name="esp_tracking"),
]
