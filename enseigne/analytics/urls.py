from django.urls import path

from enseigne.analytics import views

urlpatterns = [
    path("hq/", views.hq_home, name="hq_home"),
    path("results/", views.results, name="results"),
    path("results/sales/", views.sales, name="sales"),
    path("results/people/", views.people_shopping, name="people_shopping"),
    path("results/units/<uuid:public_id>/", views.unit_dashboard, name="unit_dashboard"),
    path("gallery/", views.gallery, name="gallery"),
    path("gallery/<uuid:public_id>/preview/", views.gallery_preview, name="gallery_preview"),
    path("gallery/<uuid:public_id>/copy/", views.gallery_copy, name="gallery_copy"),
    path("gallery/<uuid:public_id>/promote/", views.gallery_promote, name="gallery_promote"),
    path("campaigns/<uuid:public_id>/report/", views.campaign_report, name="campaign_report"),
    path(
        "campaigns/<uuid:public_id>/report.csv",
        views.campaign_report_csv,
        name="campaign_report_csv",
    ),
]
