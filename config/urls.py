from django.urls import include, path

from enseigne.api.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("enseigne.network.urls")),
    path("", include("enseigne.contacts.urls")),
    path("", include("enseigne.commerce.urls")),
    path("", include("enseigne.identity.urls")),
    path("", include("enseigne.rfm.urls")),
    path("", include("enseigne.personas.urls")),
    path("", include("enseigne.brand.urls")),
    path("", include("enseigne.campaigns.urls")),
    path("", include("enseigne.delivery.urls")),
    path("", include("enseigne.tracking.urls")),
    path("", include("enseigne.journeys.urls")),
    path("", include("enseigne.analytics.urls")),
    # HQ's per-person GDPR rights (issue 20); names identity:gdpr-export, identity:gdpr-erase.
    path("hq/people/", include("enseigne.identity.urls_gdpr")),
]
