"""Project ingestion keys: `Authorization: Bearer <key>`. They can only write events."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from feedback.models import ApiKey, hash_api_key


class ProjectKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode(errors="replace")
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw_key = raw_key.strip()
        if not raw_key:
            raise exceptions.AuthenticationFailed("Authorization: no API key after 'Bearer'.")
        key = (
            ApiKey.objects.select_related("project")
            .filter(hashed_key=hash_api_key(raw_key))
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed("Authorization: unknown API key.")
        if not key.is_active:
            raise exceptions.AuthenticationFailed("Authorization: this API key was revoked.")
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="gleaner"'


class HasProjectKey(permissions.BasePermission):
    message = "Authorization: send a project API key as 'Bearer <key>'."

    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, ApiKey)
