import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Genuine clicks and opens are answered before Django's request cycle (see the module).
from enseigne.tracking.fastpath import TrackingFastPath  # noqa: E402

application = TrackingFastPath(application)
