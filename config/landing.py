"""`/`: each person lands where their work is.

The most capable role a user holds anywhere decides: a superuser, project admin or lead
lands on the projects they lead (review:lead), an ML engineer on exports, an annotator (or
someone with no role yet) on their queues. The pages link to one another, so someone with
several roles reaches the rest from there.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.typing import AuthedRequest
from tenancy.models import Membership

Role = Membership.Role


def landing_page(*, roles: set[str], is_superuser: bool) -> str:
    """The URL name of the page a user holding `roles` lands on."""
    if is_superuser or roles & {Role.ADMIN, Role.LEAD}:
        return "review:lead"
    if Role.ML in roles:
        return "exports:list"
    return "review:queues"


@never_cache  # the answer depends on who asks, and their roles change
@login_required
@require_GET
def home(request: AuthedRequest) -> HttpResponse:
    roles = set(
        Membership.objects.filter(user=request.user).values_list("role", flat=True).distinct()
    )
    return redirect(landing_page(roles=roles, is_superuser=request.user.is_superuser))
