"""Django settings for Tally: everything comes from the environment (see tally/env.py)."""

from __future__ import annotations

import os

from tally.env import BASE_DIR, VAR_DIR, env_number, load_config

CONFIG = load_config()

DEBUG = CONFIG.debug
SECRET_KEY = CONFIG.secret_key
ALLOWED_HOSTS = list(CONFIG.allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "tally",
    "registry",
    "semantic",
    "lineage",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "tally.urls"
WSGI_APPLICATION = "tally.wsgi.application"

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

DATABASES = {"default": CONFIG.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The registry's SQLite file and the demo warehouse live under var/ (git-ignored).
VAR_DIR.mkdir(exist_ok=True)
(VAR_DIR / "static").mkdir(exist_ok=True)

WAREHOUSE = CONFIG.warehouse
# Range of the time spine Tally maintains (`tally time-spine`); None = cover the data.
TIME_SPINE_START = CONFIG.time_spine_start
TIME_SPINE_END = CONFIG.time_spine_end

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "tally" / "static"]
# Serve straight from the app folders: the demo needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "tally.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tally API",
    "DESCRIPTION": "Metric governance registry and semantic layer.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets come from the installed sidecar package: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: with no broker, tasks run in-process (demo only); otherwise a real worker.
CELERY_BROKER_URL = CONFIG.broker_url or "memory://"
CELERY_TASK_ALWAYS_EAGER = CONFIG.broker_url is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis re-delivers a message whose worker died (kill -9: no ack, no reject) once it has been
# unacknowledged this long; keep it above the longest task (a compute chunk is bounded by
# TALLY_COMPUTE_TIMEOUT_S, and runs resume after their last committed chunk).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_number("TALLY_CELERY_VISIBILITY_TIMEOUT_S", 3600)
}
CELERY_BEAT_SCHEDULE = {
    "tally-schedules-dispatch": {"task": "semantic.tasks.schedules_dispatch", "schedule": 60.0},
    "tally-audit-all": {"task": "semantic.tasks.audit_all", "schedule": 3600.0},
}

# Compute jobs (semantic/jobs): the claim/lock lease, waits, retries and the per-query timeout.
TALLY_COMPUTE_LEASE_S = env_number("TALLY_COMPUTE_LEASE_S", 600)
TALLY_COMPUTE_LOCK_WAIT_S = env_number("TALLY_COMPUTE_LOCK_WAIT_S", 30)
TALLY_COMPUTE_RETRY_BASE_S = env_number("TALLY_COMPUTE_RETRY_BASE_S", 5)
TALLY_COMPUTE_MAX_RETRIES = int(env_number("TALLY_COMPUTE_MAX_RETRIES", 5))
TALLY_COMPUTE_TIMEOUT_S = env_number("TALLY_COMPUTE_TIMEOUT_S", 300)

# SQL API (`tally serve-sql`): most rows one statement may return (more is an error, 54000),
# the per-statement timeout, and how many client connections are served at once.
TALLY_SQL_ROW_CAP = int(env_number("TALLY_SQL_ROW_CAP", 1_000_000))
TALLY_SQL_TIMEOUT_S = env_number("TALLY_SQL_TIMEOUT_S", 120)
TALLY_SQL_MAX_CONNECTIONS = int(env_number("TALLY_SQL_MAX_CONNECTIONS", 200))
# POST /api/v1/query?format=arrow streams up to this many rows; the JSON answer, built in
# memory, holds at most TALLY_QUERY_ROW_CAP (and says "truncated").
TALLY_QUERY_STREAM_ROW_CAP = int(env_number("TALLY_QUERY_STREAM_ROW_CAP", 10_000_000))
TALLY_QUERY_ROW_CAP = int(env_number("TALLY_QUERY_ROW_CAP", 100_000))
# Set to a schema name to rewrite `tally publish-views` views on every new release.
TALLY_PUBLISHED_VIEWS_SCHEMA = os.environ.get("TALLY_PUBLISHED_VIEWS_SCHEMA", "").strip()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"tally": {"handlers": ["console"], "level": "INFO"}},
}

# Review workflow (issue #5). Notifications go to the console unless a real backend is set.
EMAIL_BACKEND = "tally.mail.StderrConsoleBackend"
DEFAULT_FROM_EMAIL = "tally@localhost"
# The team whose approval certifies a definition (tier: certified).
TALLY_GOVERNANCE_TEAM = "data-governance"
# The numbers-diff check runs old and new definitions over this many trailing days.
TALLY_NUMBERS_DIFF_DAYS = 90
# …for at most this many changed metrics per proposal (each costs four warehouse queries).
TALLY_NUMBERS_DIFF_MAX_METRICS = 10
