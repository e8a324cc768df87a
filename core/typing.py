"""Request types for the type checker, narrower than Django's and DRF's where a view knows more.

Annotate a view's ``request`` with one of these; at run time it is the same object. The
pattern is django-htmx's ("Type checking" in its docs) and django-stubs' (an ``HttpRequest``
subclass declaring ``user``).
"""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails
from rest_framework.request import Request


class HtmxRequest(HttpRequest):
    """Any request: HtmxMiddleware (in MIDDLEWARE) sets ``request.htmx`` on every one."""

    htmx: HtmxDetails


class AuthedRequest(HtmxRequest):
    """A request from a signed-in user: a view behind ``login_required`` sees a ``User``,
    never ``AnonymousUser``."""

    user: User


class AuthedApiRequest(Request):
    """A DRF request that passed ``IsAuthenticated`` (the default permission): its user is
    a ``User``."""

    user: User
