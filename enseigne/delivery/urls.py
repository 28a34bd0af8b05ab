from django.urls import path

from enseigne.delivery import views

urlpatterns = [
    path("campaigns/<uuid:public_id>/launch/", views.campaign_launch, name="campaign_launch"),
    path("campaigns/<uuid:public_id>/pause/", views.campaign_pause, name="campaign_pause"),
    path("campaigns/<uuid:public_id>/resume/", views.campaign_resume, name="campaign_resume"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:pk>/", views.outbox_message, name="outbox_message"),
    path("outbox/<int:pk>/body/", views.outbox_message_body, name="outbox_message_body"),
]
