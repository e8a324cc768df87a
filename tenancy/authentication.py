"""Authentication, each way throttled against guessing.

Project ingestion keys (`Authorization: Bearer <key>`, they can only write events), user
tokens (`Authorization: Token <key>`) and the login form count failures per client address
(and, for logins, per username) in fixed windows of the shared cache. Once a window holds
too many failures, further attempts are refused before any credential is checked: 429 with
Retry-After for the API, a lock message (429) on the login page. A cache that cannot be
reached fails closed: 503 for the API here, 503 for pages from config.middleware.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import ForeignKey
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.ratelimit import (
    CACHE_UNAVAILABLE_ERRORS,
    ServiceUnavailable,
    window_count,
    window_hit,
)
from core.rows import instance_from_row
from core.statements import statement_cursor
from tenancy.models import PUBLISHABLE_KEY_PREFIX, ApiKey, hash_api_key

Bucket = tuple[str, int]  # (cache bucket, failures allowed per window)


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the hop our own proxy appended when trusted."""
    if settings.TRUST_X_FORWARDED_FOR:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if hops[-1]:
            return hops[-1]
    return request.META.get("REMOTE_ADDR", "")


def _digest(value: str) -> str:
    # Bounded, printable cache keys whatever a client sends as a username.
    return hashlib.sha256(value.casefold().encode("utf-8", "surrogatepass")).hexdigest()[:32]


def auth_failures_locked_for(buckets: list[Bucket]) -> int | None:
    """Seconds until every full bucket has reset, or None when none is full."""
    window = settings.GLEANER_AUTH_FAILURE_WINDOW_SECONDS
    waits = []
    for bucket, limit in buckets:
        count, reset_in = window_count(bucket, window_seconds=window)
        if count >= limit:
            waits.append(reset_in)
    return max(waits, default=None)


def auth_failure_record(buckets: list[Bucket]) -> None:
    window = settings.GLEANER_AUTH_FAILURE_WINDOW_SECONDS
    for bucket, limit in buckets:
        window_hit(bucket, limit, window_seconds=window)


class FailureThrottledAuthentication(authentication.BaseAuthentication):
    """Counts failed credentials per client address; refuses all of them once too many failed.

    Only requests that offer this scheme's credentials touch the cache. A failure raised with
    code "revoked" is not counted: a revoked key is known, not guessed, and a client still
    sending one must not lock out the good keys behind the same address. Nor is one coded
    "secret_in_url", refused by its form before any lookup (nothing can be guessed there).
    """

    keyword = ""
    UNCOUNTED_FAILURES = ("revoked", "secret_in_url")

    def offers_credentials(self, request: Request) -> bool:
        scheme = authentication.get_authorization_header(request).split(b" ", 1)[0]
        return scheme.lower() == self.keyword.lower().encode()

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        if not self.offers_credentials(request):
            return None
        buckets = [
            (
                f"api-auth-ip:{_digest(client_ip(request))}",
                settings.GLEANER_API_AUTH_FAILURES_PER_IP,
            )
        ]
        try:
            wait = auth_failures_locked_for(buckets)
        except CACHE_UNAVAILABLE_ERRORS as error:
            raise ServiceUnavailable() from error
        if wait is not None:
            raise exceptions.Throttled(
                wait, detail="Authorization: too many failed attempts from this address."
            )
        try:
            return self.authenticate_offered(request)
        except exceptions.AuthenticationFailed as failure:
            if failure.get_codes() not in self.UNCOUNTED_FAILURES:
                try:
                    auth_failure_record(buckets)
                except CACHE_UNAVAILABLE_ERRORS as error:
                    raise ServiceUnavailable() from error
            raise

    def authenticate_offered(self, request: Request) -> tuple[Any, Any]:
        raise NotImplementedError


class ProjectKeyAuthentication(FailureThrottledAuthentication):
    """`Authorization: Bearer <key>`, or `?key=<publishable key>` for navigator.sendBeacon
    (which cannot set headers). A publishable key also needs the request's `Origin` listed
    on it: 403 otherwise, also when a request has no Origin at all (browsers always send
    one on a cross-origin or POST request; a caller without one is no page, and should
    use a secret key). Origin can be forged outside a browser: the check keeps other sites
    from using the key in their visitors' browsers, it does not make the key secret."""

    keyword = "Bearer"
    query_parameter = "key"

    def offers_credentials(self, request: Request) -> bool:
        return super().offers_credentials(request) or self.query_parameter in request.GET

    def authenticate_offered(self, request: Request) -> tuple[AnonymousUser, ApiKey]:
        header = authentication.get_authorization_header(request).decode(errors="replace")
        in_url = request.GET.get(self.query_parameter)
        if in_url is not None:
            if header:
                raise exceptions.AuthenticationFailed(
                    "Send the key once: in the Authorization header or as ?key=, not both."
                )
            raw_key = in_url.strip()
            if not raw_key.startswith(PUBLISHABLE_KEY_PREFIX):
                raise self._secret_in_url()
        else:
            raw_key = header.partition(" ")[2].strip()
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
            raise exceptions.AuthenticationFailed(
                "Authorization: this API key was revoked.", code="revoked"
            )
        if key.is_publishable:
            self._check_origin(request, key)
        elif in_url is not None:
            raise self._secret_in_url()
        return AnonymousUser(), key

    @staticmethod
    def _secret_in_url() -> exceptions.AuthenticationFailed:
        return exceptions.AuthenticationFailed(
            "?key= takes only a publishable key (glpub_...). A secret key must never be put "
            "in a URL, where logs and browsers keep it: send it as 'Authorization: Bearer "
            "<key>' from your server, and revoke a key that was sent this way.",
            code="secret_in_url",
        )

    @staticmethod
    def _check_origin(request: Request, key: ApiKey) -> None:
        origin = request.META.get("HTTP_ORIGIN")
        if not origin:
            message = (
                "A publishable key is only accepted from a web page: this request has no "
                "Origin header. Send server-side events with a secret key."
            )
        elif origin not in key.allowed_origins:
            message = (
                "This publishable key does not allow the origin of this page; add it to the "
                "key's allowed origins."
            )
        else:
            return
        raise exceptions.PermissionDenied({"detail": message, "errors": {"Origin": message}})

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="gleaner"'


class UserTokenAuthentication(FailureThrottledAuthentication, authentication.TokenAuthentication):
    """DRF's `Token <key>`, throttled; a key that cannot be a token is refused unlooked-up."""

    keyword = "Token"

    def authenticate_offered(self, request: Request) -> tuple[AbstractBaseUser, Any]:
        parts = authentication.get_authorization_header(request).split()
        if len(parts) != 2 or not parts[1].isalnum() or len(parts[1]) > 40:
            raise exceptions.AuthenticationFailed("Authorization: send 'Token <key>'.")
        return self.authenticate_credentials(parts[1].decode())

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Any]:
        """DRF's lookup (the token with its user; an unknown token or an inactive user is
        refused with DRF's words) in one written-out statement: compiling the ORM's cost
        more CPU than any other step of an annotator's request."""
        with statement_cursor() as cursor:
            cursor.execute(_token_user_sql(), [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        width = len(Token._meta.concrete_fields)
        token = instance_from_row(Token, row[:width])
        user = instance_from_row(get_user_model(), row[width:])
        token.user = user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, token


@functools.cache
def _token_user_sql() -> str:
    user_model, user_key = get_user_model(), Token._meta.get_field("user")
    assert isinstance(user_key, ForeignKey)  # noqa: S101 - DRF's Token.user
    columns = [f't."{field.column}"' for field in Token._meta.concrete_fields] + [
        f'u."{field.column}"' for field in user_model._meta.concrete_fields
    ]
    return (
        f"SELECT {', '.join(columns)} FROM {Token._meta.db_table} t "  # noqa: S608
        f'JOIN {user_model._meta.db_table} u ON u."{user_model._meta.pk.column}" = '
        f't."{user_key.column}" WHERE t."{Token._meta.pk.column}" = %s'
    )


class HasProjectKey(permissions.BasePermission):
    message = "Authorization: send a project API key as 'Bearer <key>'."

    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, ApiKey)


class LoginThrottleMixin:
    """For AuthenticationForm subclasses: refuse a locked username or address unchecked."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    locked_for: int | None = None

    def clean(self) -> dict[str, Any]:
        ip = client_ip(self.request) if self.request is not None else ""
        buckets = [(f"login-ip:{_digest(ip)}", settings.GLEANER_LOGIN_FAILURES_PER_IP)]
        username = self.cleaned_data.get("username")
        if username:
            buckets.append(
                (f"login-user:{_digest(username)}", settings.GLEANER_LOGIN_FAILURES_PER_USERNAME)
            )
        # A cache error propagates: config.middleware answers 503, never a login unchecked.
        self.locked_for = auth_failures_locked_for(buckets)
        if self.locked_for is not None:
            minutes = -(-self.locked_for // 60)
            raise forms.ValidationError(
                "Too many failed logins for this account or from this address. "
                "Try again in %(minutes)d minute(s).",
                code="locked",
                params={"minutes": minutes},
            )
        try:
            return super().clean()  # type: ignore[misc]
        except forms.ValidationError as error:
            if error.code == "invalid_login":
                auth_failure_record(buckets)
            raise


class ThrottledAuthenticationForm(LoginThrottleMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(LoginThrottleMixin, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    """Django's login page with the failure throttle; a locked attempt answers 429."""

    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        locked_for = getattr(form, "locked_for", None)  # always ours: form_class above
        if locked_for is not None:
            response.status_code = 429
            response["Retry-After"] = str(locked_for)
        return response


class IngestKeyThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: object) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        limit = key.rate_limit_per_minute or (
            settings.GLEANER_PUBLISHABLE_RATE_LIMIT_PER_MINUTE
            if key.is_publishable
            else settings.GLEANER_INGEST_RATE_PER_MINUTE
        )
        try:
            allowed, self._wait = window_hit(f"key:{key.hashed_key[:16]}", limit)
        except CACHE_UNAVAILABLE_ERRORS as error:
            raise ServiceUnavailable() from error
        return allowed

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
