"""The team page of a project: its members and their roles, for its admins and leads (and
superusers), who add members, remove them and set their roles there.

Not a member of the project (or no such project): 404, alike, so slugs cannot be probed. A
member who may not manage the team (annotator, ML engineer): 403, saying so. What each
manager may change is the service's rule (tenancy/services.py); the page only offers it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import Form
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.storable import ID_MAX
from core.typing import AuthedRequest
from tenancy import services
from tenancy.access import access_project
from tenancy.forms import MemberAddForm, MemberRoleForm
from tenancy.models import Membership, Project

ROLE_ORDER = {role: n for n, role in enumerate(Membership.Role.values)}


@dataclass
class MemberRow:
    membership: Membership
    can_manage: bool
    errors: list[str]


@login_required
@require_GET
def team(request: AuthedRequest, slug: str) -> HttpResponse:
    project, roles = _access_team(request, slug)
    return _render_team(request, project, roles)


@login_required
@require_POST
def member_add(request: AuthedRequest, slug: str) -> HttpResponse:
    project, roles = _access_team(request, slug)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            membership = services.membership_add(
                project=project,
                user_ref=form.cleaned_data["user"],
                role=form.cleaned_data["role"],
                by=request.user,
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request,
                f"Added {membership.user.get_username()} as {membership.get_role_display()}.",
            )
            return redirect("tenancy:team", slug=project.slug)
    return _render_team(request, project, roles, add_form=form)


@login_required
@require_POST
def member_role(request: AuthedRequest, slug: str, user_id: int) -> HttpResponse:
    project, roles = _access_team(request, slug)
    member = _member(project, user_id)
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            membership = services.membership_set_role(
                project=project, user=member.user, role=form.cleaned_data["role"], by=request.user
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request,
                f"{member.user.get_username()} is {membership.get_role_display()} now.",
            )
            return _after_change(request, project, member, membership.role)
    return _render_team(request, project, roles, row_errors={member.user_id: _errors_of(form)})


@login_required
@require_POST
def member_remove(request: AuthedRequest, slug: str, user_id: int) -> HttpResponse:
    project, roles = _access_team(request, slug)
    member = _member(project, user_id)
    try:
        services.membership_remove(project=project, user=member.user, by=request.user)
    except ValidationError as error:
        return _render_team(request, project, roles, row_errors={member.user_id: error.messages})
    messages.success(request, f"Removed {member.user.get_username()} from {project.name}.")
    return _after_change(request, project, member, None)


def _after_change(
    request: AuthedRequest, project: Project, member: Membership, role: str | None
) -> HttpResponse:
    """Back to the team page, unless the user just gave up managing it (removed themselves,
    or took a role that does not manage a team): then to their start page, as the team
    page would now answer 403 or 404."""
    gave_up = (
        member.user_id == request.user.pk
        and not request.user.is_superuser
        and role not in services.TEAM_MANAGER_ROLES
    )
    return redirect("home") if gave_up else redirect("tenancy:team", slug=project.slug)


def _access_team(request: AuthedRequest, slug: str) -> tuple[Project, tuple[str, ...]]:
    """The project and the roles the user may manage in it; 404 if they are not a member,
    403 if they are but may not manage its team."""
    project = access_project(request.user, slug)
    held = Membership.objects.filter(project=project, user=request.user).values_list(
        "role", flat=True
    )
    roles = services.manageable_roles(
        next(iter(held), None), is_superuser=request.user.is_superuser
    )
    if not roles:
        raise PermissionDenied(
            f"Only the admins and leads of {project.name} manage its team. "
            "Ask one of them to change your role."
        )
    return project, roles


def _member(project: Project, user_id: int) -> Membership:
    if not 0 < user_id <= ID_MAX:  # no row has it, and SQLite cannot even bind it
        raise Http404("No such member of this project.")
    member = Membership.objects.filter(project=project, user_id=user_id).select_related("user")
    found = member.first()
    if found is None:
        raise Http404("No such member of this project.")
    return found


def _add_errors(form: Form, error: ValidationError) -> None:
    for name, problems in error.message_dict.items():
        form.add_error(name if name in form.fields else None, problems)


def _errors_of(form: Form) -> list[str]:
    return [str(problem) for problems in form.errors.values() for problem in problems]


def _render_team(
    request: AuthedRequest,
    project: Project,
    roles: tuple[str, ...],
    *,
    add_form: MemberAddForm | None = None,
    row_errors: dict[int, list[str]] | None = None,
) -> HttpResponse:
    """The team page; a 400 when a form was refused, with its errors beside it."""
    memberships = sorted(
        Membership.objects.filter(project=project).select_related("user"),
        key=lambda m: (ROLE_ORDER.get(m.role, len(ROLE_ORDER)), m.user.get_username().lower()),
    )
    row_errors = row_errors or {}
    rows = [
        MemberRow(
            membership=m,
            can_manage=m.role in roles,
            errors=row_errors.get(m.user_id, []),
        )
        for m in memberships
    ]
    refused = bool(row_errors) or (add_form is not None and bool(add_form.errors))
    context = {
        "project": project,
        "rows": rows,
        "roles": [(value, label) for value, label in Membership.Role.choices if value in roles],
        "add_form": add_form or MemberAddForm(),
        "grants_admin": Membership.Role.ADMIN in roles,
        "admins": sum(m.role == Membership.Role.ADMIN for m in memberships),
    }
    return render(request, "tenancy/team.html", context, status=400 if refused else 200)
