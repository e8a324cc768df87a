from __future__ import annotations

from django import template

from exports.selectors import EXPORT_ROLES
from tenancy.access import projects_for_user

register = template.Library()


@register.simple_tag(takes_context=True)
def can_export(context: template.Context) -> bool:
    """May the current user export from some project? One query (none when anonymous)."""
    user = context.get("user")
    if user is None or not user.is_authenticated:
        return False
    return projects_for_user(user, EXPORT_ROLES).exists()
