"""Django settings for Tally: everything comes from the environment (see tally/env.py)."""

from __future__ import annotations

import os

from tally.env import (
    BASE_DIR,
    VAR_DIR,
    env_memory_size,
    env_number,
    env_openlineage,
    env_pii_mask,
    load_config,
)

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
    # Before staticfiles: an app listed earlier wins a management command's name, and
    # tally's runserver (closing each request thread's connections) must be the one run.
    "tally",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    # {% load rules %}{% has_perm "registry.review" user proposal as can %} in templates.
    "rules",
    "registry",
    "semantic",
    "lineage",
]

MIDDLEWARE = [
    # Request id, latency metric, JSON 500s on API paths (outermost: it sees everything).
    "tally.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "tally.middleware.SecurityHeadersMiddleware",
    # Refuses an oversized body (413) before anything reads it.
    "tally.middleware.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tally.middleware.AccessContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # A TallyError raised by a web UI view becomes an error page (the API renders its own).
    "tally.ui.UserErrorPageMiddleware",
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
                "registry.context_processors.access",
                "tally.ui.navigation",
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

# rules' backend answers user.has_perm("registry.<action>", obj) from registry/permissions.py.
AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# The web UI's own sign-in page (Django's LoginView); every UI page needs a signed-in user.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog"
LOGOUT_REDIRECT_URL = "login"

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
    # Bearer first: an anonymous call is answered 401 with `WWW-Authenticate: Bearer`.
    # Session (with CSRF) serves the UI; Basic is gone (passwords are not API credentials).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Default deny: a view must declare `access = {METHOD: Action}` (registry/api/permissions.py).
    "DEFAULT_PERMISSION_CLASSES": ["registry.api.permissions.ActionPermission"],
    "DEFAULT_THROTTLE_CLASSES": ["tally.throttling.ActionRateThrottle"],
    # JSON only outside DEBUG: the browsable API needs inline scripts the CSP refuses, and
    # /api/docs/ is the interactive client.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
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
    # The schema and docs are public (the API's shape is no secret; every call it lists
    # needs a token or a session). Declared explicitly so the default-deny walk sees it.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
}

# Celery: with no broker, tasks run in-process (demo only); otherwise a real worker.
CELERY_BROKER_URL = CONFIG.broker_url or "memory://"
CELERY_TASK_ALWAYS_EAGER = CONFIG.broker_url is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Recovery (README "Operations"): a compute run's worker renews its lease every quarter
# lease; once a lease has expired (kill -9, lost host) or a queued run's message is overdue
# (broker restarted without persistence), beat's reaper re-sends the run, which resumes after
# its last committed chunk. With these defaults a killed worker's run is re-sent within
# lease + reap interval (~90 s). Redis's own re-delivery of unacknowledged messages (the
# visibility timeout) is the second line: it must exceed the longest retry countdown
# (TALLY_COMPUTE_RETRY_MAX_S) and lease, or Redis re-delivers ETA tasks early.
# The sweep: how often a worker re-queues messages overdue past the visibility timeout
# (kombu's own default is every 10 s x a throttle of 10; this makes it one number).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_number("TALLY_CELERY_VISIBILITY_TIMEOUT_S", 900),
    "unacked_restore_interval": env_number("TALLY_CELERY_RESTORE_SWEEP_S", 100),
    "unacked_restore_throttle": 1,
}
CELERY_BEAT_SCHEDULE = {
    "tally-schedules-dispatch": {"task": "semantic.tasks.schedules_dispatch", "schedule": 60.0},
    "tally-audit-all": {"task": "semantic.tasks.audit_all", "schedule": 3600.0},
    "tally-compute-reap": {
        "task": "semantic.tasks.compute_runs_reap",
        "schedule": env_number("TALLY_COMPUTE_REAP_EVERY_S", 30),
    },
}

# Compute jobs (semantic/jobs): the claim/lock lease, waits, retries and the per-query timeout.
TALLY_COMPUTE_LEASE_S = env_number("TALLY_COMPUTE_LEASE_S", 60)
TALLY_COMPUTE_LOCK_WAIT_S = env_number("TALLY_COMPUTE_LOCK_WAIT_S", 30)
TALLY_COMPUTE_RETRY_BASE_S = env_number("TALLY_COMPUTE_RETRY_BASE_S", 5)
TALLY_COMPUTE_RETRY_MAX_S = env_number("TALLY_COMPUTE_RETRY_MAX_S", 60)
# Failed attempts IN A ROW before a run fails (a committed chunk resets the count; waiting
# for a series lock is not a failure).
TALLY_COMPUTE_MAX_RETRIES = int(env_number("TALLY_COMPUTE_MAX_RETRIES", 5))
TALLY_COMPUTE_TIMEOUT_S = env_number("TALLY_COMPUTE_TIMEOUT_S", 300)
# The reaper re-sends a queued/retrying run whose message is this overdue.
TALLY_COMPUTE_REQUEUE_AFTER_S = env_number("TALLY_COMPUTE_REQUEUE_AFTER_S", 60)
# `tally compute` (waiting) gives up after this long and says what it was waiting for.
TALLY_COMPUTE_WAIT_S = env_number("TALLY_COMPUTE_WAIT_S", 3600)

# SQL API (`tally serve-sql`): most rows one statement may return (more is an error, 54000),
# the per-statement timeout, and how many client connections are served at once.
TALLY_SQL_ROW_CAP = int(env_number("TALLY_SQL_ROW_CAP", 1_000_000))
TALLY_SQL_TIMEOUT_S = env_number("TALLY_SQL_TIMEOUT_S", 120)
TALLY_SQL_MAX_CONNECTIONS = int(env_number("TALLY_SQL_MAX_CONNECTIONS", 200))
# The execution pool (semantic/sqlapi/pool.py): metric queries run at once across all
# connections (memory ~ slots x one query's scan, not ~ connections), how many more wait
# (past it 53300), and how long one waits for a slot (past it 57014).
TALLY_SQL_EXEC_SLOTS = int(env_number("TALLY_SQL_EXEC_SLOTS", 4))
TALLY_SQL_EXEC_QUEUE = int(env_number("TALLY_SQL_EXEC_QUEUE", 64))
TALLY_SQL_EXEC_WAIT_S = env_number("TALLY_SQL_EXEC_WAIT_S", 30)
# A DuckDB warehouse file stays open between the SQL API's queries (opening it costs ~20 ms
# of CPU); closed after this many idle seconds, so other processes can write it again.
TALLY_SQL_WAREHOUSE_IDLE_S = env_number("TALLY_SQL_WAREHOUSE_IDLE_S", 2)
# Bounds on SQL API input (issue 18): a connection must finish startup and authentication
# within TALLY_SQL_AUTH_TIMEOUT_S; an authenticated session idle for TALLY_SQL_IDLE_TIMEOUT_S
# is closed; unauthenticated connections are capped per client address and in total (they
# never take the TALLY_SQL_MAX_CONNECTIONS slots); a query text over
# TALLY_SQL_MAX_QUERY_BYTES is refused before it is parsed (54000).
TALLY_SQL_AUTH_TIMEOUT_S = env_number("TALLY_SQL_AUTH_TIMEOUT_S", 10)
TALLY_SQL_IDLE_TIMEOUT_S = env_number("TALLY_SQL_IDLE_TIMEOUT_S", 900)
TALLY_SQL_MAX_UNAUTH_PER_ADDRESS = int(env_number("TALLY_SQL_MAX_UNAUTH_PER_ADDRESS", 32))
TALLY_SQL_MAX_UNAUTH = int(env_number("TALLY_SQL_MAX_UNAUTH", 128))
TALLY_SQL_MAX_QUERY_BYTES = int(env_number("TALLY_SQL_MAX_QUERY_BYTES", 100_000))
# A session's token (or user) row is read again before every metric query; its roles and
# principal are derived again before a statement once the last such check is this old.
TALLY_SQL_RECHECK_S = env_number("TALLY_SQL_RECHECK_S", 1)
# The in-memory DuckDB answering pg_catalog/information_schema queries: its memory limit (no
# spilling to disk) and a statement timeout of its own (catalog queries take milliseconds).
TALLY_SQL_CATALOG_MEMORY = env_memory_size("TALLY_SQL_CATALOG_MEMORY", "256MB")
TALLY_SQL_CATALOG_TIMEOUT_S = env_number("TALLY_SQL_CATALOG_TIMEOUT_S", 10)
# POST /api/v1/query?format=arrow streams up to this many rows; the JSON answer, built in
# memory, holds at most TALLY_QUERY_ROW_CAP (and says "truncated").
TALLY_QUERY_STREAM_ROW_CAP = int(env_number("TALLY_QUERY_STREAM_ROW_CAP", 10_000_000))
TALLY_QUERY_ROW_CAP = int(env_number("TALLY_QUERY_ROW_CAP", 100_000))
# Result cache of metric queries (semantic/result_cache.py), in CACHES["default"] (Redis with
# TALLY_CACHE_URL): entries live this long (0 = off), answers up to this many rows are kept,
# and the warehouse's data version (row counts, newest time values, write marks) is looked up
# again once it is this old, so a changed warehouse shows within that many seconds.
TALLY_RESULT_CACHE_TTL_S = float(os.environ.get("TALLY_RESULT_CACHE_TTL_S", "300") or 0)
TALLY_RESULT_CACHE_MAX_ROWS = int(env_number("TALLY_RESULT_CACHE_MAX_ROWS", 10_000))
TALLY_RESULT_CACHE_VERSION_S = float(os.environ.get("TALLY_RESULT_CACHE_VERSION_S", "5") or 0)
# The fan-out guard's "key holds" answer (semantic/key_guard.py) and the result cache's
# answers are kept per data version; where it sees no write marks (ClickHouse, Spark,
# Snowflake, BigQuery, Trino; a view, a partitioned table…) only this long, the window in which
# a change keeping row counts and newest times (an UPDATE repeating a key) goes unseen.
TALLY_KEY_PROBE_UNVERSIONED_S = float(os.environ.get("TALLY_KEY_PROBE_UNVERSIONED_S", "60") or 0)
# Set to a schema name to rewrite `tally publish-views` views on every new release.
TALLY_PUBLISHED_VIEWS_SCHEMA = os.environ.get("TALLY_PUBLISHED_VIEWS_SCHEMA", "").strip()

# OpenLineage run events of compute runs (lineage/openlineage.py): START, COMPLETE, FAIL to an
# HTTP endpoint (TALLY_OPENLINEAGE_URL, e.g. Marquez) or a file (TALLY_OPENLINEAGE_FILE, one
# JSON event per line); neither set means no events.
TALLY_OPENLINEAGE = env_openlineage()
TALLY_OPENLINEAGE_TIMEOUT_S = env_number("TALLY_OPENLINEAGE_TIMEOUT_S", 5)

# PII masking (semantic/compiler/policies.py): the salt of the pseudonyms, set on the warehouse
# session when a query runs and never written into SQL, output or logs (required outside
# demo/debug mode); per tenant, each tenant binding gets its own salt (HMAC of this one) so
# pseudonyms do not link across tenants; and the default mask of PII columns whose contract
# does not choose one (hash | null).
TALLY_DEMO = CONFIG.demo
TALLY_PII_SALT = CONFIG.pii_salt
TALLY_PII_SALT_PER_TENANT = CONFIG.pii_salt_per_tenant
TALLY_PII_MASK = env_pii_mask()

# Logs: JSON lines with request ids (tally/logs.py) unless TALLY_LOG_FORMAT=plain (the
# default in demo mode, for humans at a terminal). Django's request errors and Celery's own
# records go through the same handler, so every 500 and task failure has its traceback.
TALLY_LOG_FORMAT = os.environ.get("TALLY_LOG_FORMAT", "plain" if CONFIG.demo else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "tally.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "tally.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if TALLY_LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "loggers": {
        "tally": {"handlers": ["console"], "level": "INFO"},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "celery": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
# GET /ops/metrics (Prometheus text): for a scraper presenting `Authorization: Bearer <token>`
# with this token, or a signed-in admin; anyone else gets 403. Unset = admins only.
TALLY_METRICS_TOKEN = os.environ.get("TALLY_METRICS_TOKEN", "").strip()

# Review workflow (issue #5). Notifications go to the console unless a real backend is set.
EMAIL_BACKEND = "tally.mail.StderrConsoleBackend"
DEFAULT_FROM_EMAIL = "tally@localhost"
# The team whose approval certifies a definition (tier: certified).
TALLY_GOVERNANCE_TEAM = "data-governance"
# The numbers-diff check runs old and new definitions over this many trailing days.
TALLY_NUMBERS_DIFF_DAYS = 90
# …for at most this many changed metrics per proposal (each costs four warehouse queries).
TALLY_NUMBERS_DIFF_MAX_METRICS = 10

# --------------------------------------------------------------------------- access control (#8)
# Every signed-in person holds this role ("" = none); see registry/roles.py for the table.
TALLY_DEFAULT_ROLE = CONFIG.default_role
# HMAC key of API tokens (TALLY_TOKEN_KEY, else derived from SECRET_KEY).
TALLY_TOKEN_KEY = CONFIG.token_key
# Per token (else per user) on compile and query; 429 with a Retry-After past it.
TALLY_RATE_LIMITS = {"compile": CONFIG.rate_compile, "query": CONFIG.rate_query}
# Password sign-ins (web, /admin/, SQL API): failures per account and per client address within
# a window before sign-in is locked (429 / 28P01) until the window ends; counters in CACHES.
TALLY_LOGIN_MAX_FAILURES_ACCOUNT = int(env_number("TALLY_LOGIN_MAX_FAILURES_ACCOUNT", 5))
TALLY_LOGIN_MAX_FAILURES_ADDRESS = int(env_number("TALLY_LOGIN_MAX_FAILURES_ADDRESS", 20))
TALLY_LOGIN_WINDOW_S = int(env_number("TALLY_LOGIN_WINDOW_S", 900))
# Request bodies (proposals carry definition files up to 5 MB each).
TALLY_MAX_BODY_BYTES = CONFIG.max_body_bytes
# MCP over HTTP: sessions for initialized clients (tally/mcp/http.py), off: stateless.
TALLY_MCP_SESSIONS = CONFIG.mcp_sessions
DATA_UPLOAD_MAX_MEMORY_SIZE = CONFIG.max_body_bytes

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CONFIG.cache_url}
        if CONFIG.cache_url
        # One process's memory: rate limits then hold per web process, not across them.
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Security headers (SecurityMiddleware, XFrameOptionsMiddleware, tally.middleware).
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
TALLY_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = list(CONFIG.csrf_trusted_origins)
# TALLY_HTTPS=true is production behind TLS: redirect, secure cookies, HSTS.
SECURE_SSL_REDIRECT = CONFIG.https
SESSION_COOKIE_SECURE = CONFIG.https
CSRF_COOKIE_SECURE = CONFIG.https
SECURE_HSTS_SECONDS = 31_536_000 if CONFIG.https else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = CONFIG.https
if CONFIG.behind_proxy:
    # Only behind a proxy that sets (and strips client-sent) X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS preload is an opt-in submission to browser lists, not a header default.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
