"""The project's URLs plus a bare endpoint that only answers 302.

Both go through the same middleware and the same server, so the difference is what a
click costs (token check, link lookup, the event appended to the batch).
"""

from django.http import HttpResponseRedirect
from django.urls import include, path


def bare(request):
    return HttpResponseRedirect("https://www.example.com/")


urlpatterns = [path("bare/", bare), path("", include("config.urls"))]
