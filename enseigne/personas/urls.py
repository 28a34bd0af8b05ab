from django.urls import path

from enseigne.personas import views

# Few routes on purpose: the authorization matrix tries each route as six users.
urlpatterns = [
    # GET: the counts (``?unit=`` one unit or region); POST: HQ's "recompute now".
    path("personas/", views.persona_overview, name="persona_overview"),
    path("hq/personas/new/", views.persona_edit, name="persona_new"),
    # POST ``action``: save (default), up, down or delete.
    path("hq/personas/<uuid:public_id>/", views.persona_edit, name="persona_detail"),
]
