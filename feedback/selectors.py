"""Reads of the feedback app. `access_*` functions check permission or raise Http404."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from feedback.models import Event, Generation, Label, Membership, Project, Session

READ_ROLES = (Membership.Role.ADMIN, Membership.Role.LEAD, Membership.Role.ML)
SESSION_EVENTS_SHOWN = 1000


def projects_for_user(
    user: AbstractBaseUser | AnonymousUser, roles: tuple[str, ...] | None = None
) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return Project.objects.filter(pk__in=memberships.values("project_id"))


def access_project(
    user: AbstractBaseUser | AnonymousUser, slug: str, roles: tuple[str, ...] | None = None
) -> Project:
    """The project if `user` holds one of `roles` in it (any role when None), else Http404.

    Not-a-member and no-such-project answer alike, so slugs cannot be probed.
    """
    project = projects_for_user(user, roles).filter(slug=slug).first()
    if project is None:
        raise Http404("No such project.")
    return project


def access_session(
    user: AbstractBaseUser | AnonymousUser, project_slug: str, external_id: str
) -> Session:
    project = access_project(user, project_slug, READ_ROLES)
    session = (
        Session.objects.filter(project=project, external_id=external_id)
        .select_related("project")
        .first()
    )
    if session is None:
        raise Http404("No such session.")
    return session


def session_generations(session: Session) -> QuerySet[Generation]:
    """The session's generations in order, each with its labels (two queries in all)."""
    return session.generations.order_by("created_at", "id").prefetch_related(
        Prefetch("labels", queryset=Label.objects.order_by("id"))
    )


def session_events(session: Session, limit: int = SESSION_EVENTS_SHOWN) -> list[Event]:
    return list(
        # The order derivation uses, so "the latest edit" means the same thing in both.
        session.events.order_by("timestamp", "client_id").only(
            "client_id", "type", "timestamp", "received_at", "generation_ref", "payload"
        )[:limit]
    )


def final_texts(generations: list[Generation], events: list[Event]) -> dict[str, str]:
    """Each generation's text after the latest edit (by timestamp), else its output."""
    texts = {generation.external_id: generation.output for generation in generations}
    for event in events:  # ordered by timestamp: the last edit wins
        if event.type == Event.Type.EDIT and event.generation_ref in texts:
            texts[event.generation_ref] = event.payload.get("text", "")
    return texts
