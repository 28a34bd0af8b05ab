from django.urls import path

from enseigne.identity import views

urlpatterns = [
    path("hq/people/", views.person_search, name="person_search"),
    path("hq/people/merge/", views.person_merge, name="person_merge"),
    path("hq/people/review/", views.review_queue, name="review_queue"),
    path("hq/people/review/<int:pk>/", views.review_decide, name="review_decide"),
    path("hq/people/history/", views.change_history, name="change_history"),
    path("hq/people/history/<int:pk>/undo/", views.change_undo, name="change_undo"),
    path("hq/people/settings/", views.identity_settings, name="identity_settings"),
    path("hq/people/settings/matching/", views.matching_settings, name="matching_settings"),
    path("hq/people/settings/run/", views.model_run_start, name="model_run_start"),
    path("hq/people/<uuid:public_id>/", views.person_detail, name="person_detail"),
    path("hq/people/<uuid:public_id>/split/", views.person_split, name="person_split"),
]
