from django.urls import path

from enseigne.commerce import views

urlpatterns = [
    path("sales/imports/", views.order_import_list, name="order_import_list"),
    path("sales/imports/<uuid:public_id>/", views.order_import_detail, name="order_import_detail"),
    path(
        "sales/imports/<uuid:public_id>/report.csv",
        views.order_import_problems,
        name="order_import_problems",
    ),
    path("sales/catalogue/", views.catalogue_import_page, name="catalogue_import"),
    path(
        "sales/catalogue/<uuid:public_id>/",
        views.catalogue_import_detail,
        name="catalogue_import_detail",
    ),
    path(
        "sales/catalogue/<uuid:public_id>/report.csv",
        views.catalogue_import_problems,
        name="catalogue_import_problems",
    ),
]
