"""The project's URLs plus plain Django views under /api/ that fail the ways a view can, for the error tests."""

from django.core.exceptions import SuspiciousOperation
from django.http import HttpResponse
from django.urls import path

from brokerage.urls import handler400, handler404, handler500  # noqa: F401
from brokerage.urls import urlpatterns as project_urlpatterns


def reads_the_form(request):
    return HttpResponse(str(dict(request.POST)))


def raises_suspicious(request):
    raise SuspiciousOperation("crafted input")


def raises_bug(request):
    database_url = "postgres://app:" + "s3cret-in-" + "a-frame@db.internal/prod"  # noqa: F841  (a frame variable)
    raise RuntimeError("a bug")


failing = [
    path("api/test/form/", reads_the_form),
    path("api/test/suspicious/", raises_suspicious),
    path("api/test/bug/", raises_bug),
    path("test/bug/", raises_bug),
]
urlpatterns = failing + project_urlpatterns
