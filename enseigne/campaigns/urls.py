from django.urls import path

from enseigne.campaigns import views

urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaign_list"),
    path("campaigns/new/", views.campaign_new, name="campaign_new"),
    path("campaigns/new/free/", views.campaign_free, name="campaign_free"),
    path("campaigns/approvals/", views.approvals, name="campaign_approvals"),
    path("campaigns/calendar/", views.calendar, name="campaign_calendar"),
    path("campaigns/rules/", views.sending_rules, name="sending_rules"),
    path("campaigns/calendar/events/", views.calendar_events, name="campaign_calendar_events"),
    path("campaigns/<uuid:public_id>/", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<uuid:public_id>/audience/", views.campaign_preview, name="campaign_preview"),
    path("campaigns/<uuid:public_id>/message/", views.campaign_message, name="campaign_message"),
    path("campaigns/<uuid:public_id>/progress/", views.campaign_progress, name="campaign_progress"),
    path("campaigns/<uuid:public_id>/edit/", views.campaign_edit, name="campaign_edit"),
    path(
        "campaigns/<uuid:public_id>/duplicate/",
        views.campaign_duplicate,
        name="campaign_duplicate",
    ),
    path("campaigns/<uuid:public_id>/submit/", views.campaign_submit, name="campaign_submit"),
    path(
        "campaigns/<uuid:public_id>/approve/",
        views.campaign_decide,
        {"decision": "approve"},
        name="campaign_approve",
    ),
    path(
        "campaigns/<uuid:public_id>/reject/",
        views.campaign_decide,
        {"decision": "reject"},
        name="campaign_reject",
    ),
    path("campaigns/<uuid:public_id>/schedule/", views.campaign_schedule, name="campaign_schedule"),
    path("campaigns/<uuid:public_id>/cancel/", views.campaign_cancel, name="campaign_cancel"),
    path("campaigns/<uuid:public_id>/reopen/", views.campaign_reopen, name="campaign_reopen"),
    path("campaigns/<uuid:public_id>/relay/", views.campaign_relay, name="campaign_relay"),
    path("campaigns/<uuid:public_id>/move/", views.campaign_move, name="campaign_move"),
]
