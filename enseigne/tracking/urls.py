from django.urls import path

from enseigne.tracking import views

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("c/<str:token>", views.click, name="click"),
    path("o/<str:token>.gif", views.open_pixel, name="open_pixel"),
    path("hooks/bounces/<str:key>/", views.inbound_bounce, name="inbound_bounce"),
    path("hooks/sms/<str:key>/", views.inbound_sms, name="inbound_sms"),
    path("hooks/esp/<slug:esp>/", views.esp_tracking, name="esp_tracking"),
]
