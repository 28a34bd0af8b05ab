from django.urls import path

from enseigne.journeys import views

# Few routes on purpose: the authorization matrix tries each route as six users.
urlpatterns = [
    # GET: HQ's journeys; POST ``action``: create (default), pause_all, resume_all.
    path("hq/journeys/", views.hq_journeys, name="hq_journeys"),
    # POST ``action``: publish (default), mandatory, pause_all, resume_all.
    path("hq/journeys/<uuid:public_id>/", views.hq_journey, name="hq_journey"),
    # GET: the journeys offered and the runs the user sees; POST: activate one.
    path("journeys/", views.journey_list, name="journey_list"),
    # POST ``action``: pause, resume or stop.
    path("journeys/runs/<uuid:public_id>/", views.journey_run, name="journey_run"),
    # GET: the journey's report over the stores the user sees (404 when it sees none).
    path("journeys/<uuid:public_id>/report/", views.journey_report, name="journey_report"),
    # GET: the campaign calendar's journeys, as its events (JSON).
    path("journeys/calendar/", views.journey_calendar, name="journey_calendar"),
    # GET: the store's texts in the run's messages (``preview``: one step's message);
    # POST ``action``: choose, approve, reject.
    path(
        "journeys/runs/<uuid:public_id>/texts/", views.journey_run_texts, name="journey_run_texts"
    ),
]
