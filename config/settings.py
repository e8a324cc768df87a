"""Gleaner settings: one file, every knob from the environment.

Development defaults are safe and need no services (SQLite, in-process tasks).
Production is selected by environment: DEBUG=0, SECRET_KEY, DATABASE_URL, REDIS_URL.
"""

import importlib.util
import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: str) -> int:
    raw = os.environ.get(name, default)
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None


def envlist(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = envbool("DEBUG", "1")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "tenancy",
    "feedback",
    "review",
    "exports",
    "playground",
    "signals",
]
# Demo tooling (seed_demo, simulate_traffic): a checkout has it, an installed wheel does not.
if importlib.util.find_spec("demo") is not None:
    INSTALLED_APPS.append("demo")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "config.middleware.PermissionsPolicyMiddleware",
    "config.cors.EventsCorsMiddleware",
    "config.middleware.ServiceUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite unless DATABASE_URL says otherwise.
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", "60"),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a task writes; the timeout waits out short locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # Take the write lock at BEGIN: read-then-write transactions (claims) serialise
            # instead of failing with "database is locked" on upgrade.
            "transaction_mode": "IMMEDIATE",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and envint(
    "DB_POOL_MAX", "10"
):
    # psycopg's pool, one per process: connections are bounded (processes x DB_POOL_MAX must
    # stay under PostgreSQL's max_connections) and a request that waits DB_POOL_TIMEOUT
    # seconds for one gets 503 + Retry-After (config.middleware), not a pile-up of new ones.
    # DB_POOL_MAX=0 goes back to one connection per thread kept DB_CONN_MAX_AGE seconds.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": envint("DB_POOL_MIN", "1"),
        "max_size": envint("DB_POOL_MAX", "10"),
        "timeout": envint("DB_POOL_TIMEOUT", "5"),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django must not
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and envbool(
    "DB_PREPARED_STATEMENTS", "1"
):
    # The hot paths' written-out statements (core.statements) are prepared once per
    # connection. Django turns prepared statements off for transaction-pooling PgBouncers,
    # which need DB_PREPARED_STATEMENTS=0; Django's own cursors never prepare either way.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery broker and the shared cache (rate limits, debounce marks).
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
# No broker configured: tasks run in-process, at once (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# No lost work: a task is acknowledged only after it ran; a worker killed mid-task gives
# it back; the broker re-delivers only after the longest task could have finished.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", "3600")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 600,
    # A Redis that stops answering (not just refusing) must not hang a connect forever.
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
}
# Broker outages: keep retrying to (re)connect for as long as it takes, also at start-up
# (the default gives up after 100 attempts, about 45 minutes, and the worker exits). A task
# running when the connection drops is left to finish: its database work commits, and its
# lost ack at worst re-runs an idempotent task. The consumer class works around a Celery
# bug that made the worker exit on such a lost ack (config/celery.py). Run the worker and
# beat under a supervisor all the same (README, "Running in production").
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_WORKER_CONSUMER = "config.celery:BrokerOutageConsumer"
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "gleaner")
CELERY_BEAT_SCHEDULE = {
    "mark-inactive-sessions-abandoned": {
        "task": "feedback.tasks.mark_inactive_sessions_abandoned",
        "schedule": 60.0,
    },
    # Safety net: derivation is scheduled by ingestion; this catches anything missed (a
    # schedule lost while Redis was down, a failed session whose retry time has come).
    "derive-pending-sessions": {
        "task": "feedback.tasks.derive_pending_sessions",
        "schedule": float(envint("GLEANER_DERIVE_SWEEP_SECONDS", "60")),
    },
    "reap-expired-claims": {"task": "review.tasks.reap_expired_claims", "schedule": 60.0},
    # Safety net: answers schedule their queue's recomputation; this catches any missed.
    "recompute-stale-agreements": {
        "task": "review.tasks.recompute_stale_agreements",
        "schedule": 60.0,
    },
    # Exports of a dead worker, or queued while Redis was down (exports/services.py).
    "resume-stale-exports": {
        "task": "exports.tasks.resume_stale_exports",
        "schedule": float(envint("GLEANER_EXPORT_SWEEP_SECONDS", "15")),
    },
}
# A building export's heartbeat; a job silent for four beats is taken over (its worker died).
GLEANER_EXPORT_HEARTBEAT_SECONDS = envint("GLEANER_EXPORT_HEARTBEAT_SECONDS", "10")
# A burst of events for one session inside this window causes one derivation.
GLEANER_DERIVE_DEBOUNCE_SECONDS = envint("GLEANER_DERIVE_DEBOUNCE_SECONDS", "5")
# Answers arriving inside this window cause one agreement recomputation per queue.
GLEANER_AGREEMENT_DEBOUNCE_SECONDS = envint("GLEANER_AGREEMENT_DEBOUNCE_SECONDS", "10")
# How many annotations and items, over all queues, each worker process keeps between
# agreement recomputes (about 50 bytes each; 0: none). Beyond that, the queues used longest
# ago are read whole again (review/kept.py).
GLEANER_AGREEMENT_KEPT_ROWS = envint("GLEANER_AGREEMENT_KEPT_ROWS", "4000000")
# A queue's annotations or items read whole, this many or more, are also left in the cache
# for the other worker processes, whose first recompute of the queue then reads only the
# rows written since (review/kept.py; a million answers take 21 MB in Redis; 0: never).
GLEANER_AGREEMENT_SHARED_ROWS = envint("GLEANER_AGREEMENT_SHARED_ROWS", "50000")
# Called (in the derivation transaction) with the ids of labels that need review.
GLEANER_LABEL_CONSUMERS = ["review.services.labels_route"]

if REDIS_URL:
    CACHES = {
        "default": {
            # Django's, with one client per pool (core/cache.py).
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "gleaner"),
            # A Redis that does not answer fails the request in seconds (503), never hangs it.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Failed logins and API credentials, counted in the cache per window (tenancy/authentication.py).
GLEANER_AUTH_FAILURE_WINDOW_SECONDS = envint("GLEANER_AUTH_FAILURE_WINDOW_SECONDS", "900")
GLEANER_LOGIN_FAILURES_PER_USERNAME = envint("GLEANER_LOGIN_FAILURES_PER_USERNAME", "10")
GLEANER_LOGIN_FAILURES_PER_IP = envint("GLEANER_LOGIN_FAILURES_PER_IP", "30")
GLEANER_API_AUTH_FAILURES_PER_IP = envint("GLEANER_API_AUTH_FAILURES_PER_IP", "60")
# Behind our own reverse proxy every client shares its address: count the hop it appends.
TRUST_X_FORWARDED_FOR = envbool("TRUST_X_FORWARDED_FOR", "0")
LOGIN_REDIRECT_URL = "home"  # config/landing.py: each role lands where its work is
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.authentication.UserTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )
SPECTACULAR_SETTINGS = {
    "TITLE": "Gleaner API",
    "DESCRIPTION": "Behavioural feedback ingestion, review and training-data exports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# The playground (/playground/): a canned chat instrumented with the capture snippet, on
# the demo project. For development and demos; off in production unless asked for.
GLEANER_PLAYGROUND = envbool("GLEANER_PLAYGROUND", "1" if DEBUG else "0")

# Ingestion limits (docs/configuration.md, docs/ingestion.md): per request and per text field.
GLEANER_MAX_EVENTS_PER_REQUEST = envint("GLEANER_MAX_EVENTS_PER_REQUEST", "1000")
GLEANER_MAX_REQUEST_BYTES = envint("GLEANER_MAX_REQUEST_BYTES", str(5 * 1024 * 1024))
GLEANER_MAX_TEXT_BYTES = envint("GLEANER_MAX_TEXT_BYTES", str(100 * 1024))
# Requests per minute for one ingestion key (a key may override it in admin).
GLEANER_INGEST_RATE_PER_MINUTE = envint("GLEANER_INGEST_RATE_PER_MINUTE", "600")
# The same for a publishable (browser) key: its value is public, so a lower default bounds
# what anyone who reads it from a page can send. Also per key, also overridable in admin.
GLEANER_PUBLISHABLE_RATE_LIMIT_PER_MINUTE = envint(
    "GLEANER_PUBLISHABLE_RATE_LIMIT_PER_MINUTE", "120"
)
# Seconds a browser may keep the answer to a CORS preflight of /api/v1/events (config/cors.py).
GLEANER_CORS_MAX_AGE_SECONDS = envint("GLEANER_CORS_MAX_AGE_SECONDS", "600")
# Django refuses bodies above this before our own 413 check could name the limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = GLEANER_MAX_REQUEST_BYTES + 1024 * 1024

# Production hardening: on whenever DEBUG is off, each overridable.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("BEHIND_TLS_PROXY", "0") else None
)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "0" if DEBUG else "1")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "0" if DEBUG else "1")
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "0" if DEBUG else "1")
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", "0" if DEBUG else "1")
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", "0" if DEBUG else "1")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Scripts and styles only from our own files (no inline code: templates are checked by
# tests/test_platform.py); images from here or data: URIs, so Markdown cannot make every
# reader's browser fetch another host. The API docs relax styles (config/urls.py).
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "manifest-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), hid=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), serial=(), usb=()"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # One line per task is noise when tasks run in-process (demo, tests); workers log them.
    "loggers": {"celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"}},
}
