from django.urls import path

from enseigne.tracking import views

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
