from django.urls import path

from enseigne.personas import views

urlpatterns = [
    path("personas/", views.persona_overview, name="persona_overview"),
    path("personas/units/<uuid:public_id>/", views.persona_unit, name="persona_unit"),
    path("hq/personas/new/", views.persona_edit, name="persona_new"),
    path("hq/personas/run/", views.persona_recompute, name="persona_recompute"),
    path("hq/personas/<uuid:public_id>/", views.persona_edit, name="persona_detail"),
    path("hq/personas/<uuid:public_id>/move/", views.persona_move, name="persona_move"),
    path("hq/personas/<uuid:public_id>/delete/", views.persona_delete, name="persona_delete"),
]
