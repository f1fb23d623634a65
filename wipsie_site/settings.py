"""Wipsie settings: everything comes from the environment (and an optional `.env`).

The names and defaults are the specification's (`../shared/spec/wipsie-spec.md`,
"Configuration Management"). Values are read with django-environ, which fails
loudly on a malformed value instead of guessing.
"""

import ipaddress
import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.utils.crypto import salted_hmac
from kombu import Queue
from kombu.utils.url import safequote
from pythonjsonlogger.core import RESERVED_ATTRS

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A `.env` beside manage.py is optional; real environment variables win over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def env_list(name: str, default: list[str]) -> list[str]:
    """A list setting, written either as the spec's JSON (`["a", "b"]`) or as `a,b`."""
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    if raw.startswith("["):
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name} is not a valid JSON list: {exc}") from exc
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ImproperlyConfigured(f"{name} must be a JSON list of strings")
        return value
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Core -------------------------------------------------------------------

INSECURE_DEFAULT_SECRET_KEY = "insecure-wipsie-development-key-change-me"  # noqa: S105
# What Django's `check --deploy` asks of a key (security.W009), a little stricter.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 10
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_DEFAULT_SECRET_KEY)
_MAKE_A_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
if not DEBUG and SECRET_KEY == INSECURE_DEFAULT_SECRET_KEY:
    # Signed sessions and JWTs made with a published key can be forged by anyone.
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY to a long random value "
        f"({_MAKE_A_KEY}), or set DEBUG=true for local development."
    )
if not DEBUG and (
    len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
    or SECRET_KEY.startswith("django-insecure-")
):
    # A short or repetitive key can be guessed offline from any signed cookie.
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak: it has {len(SECRET_KEY)} characters, {len(set(SECRET_KEY))} of them "
        f"different; production needs at least {SECRET_KEY_MIN_LENGTH} characters with at least "
        f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones. Make one with {_MAKE_A_KEY}."
    )


def derived_secret(purpose: str) -> str:
    """A key for one purpose, derived one-way from SECRET_KEY (it reveals nothing about it)."""
    return salted_hmac(f"wipsie.{purpose}", "", secret=SECRET_KEY, algorithm="sha256").hexdigest()


ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # unfold (the admin theme) before django.contrib.admin, so its templates win.
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us: no CDN
    "django_celery_results",
    "django_celery_beat",
    "sqs_app",
    "tasks_app",
]

MIDDLEWARE = [
    # Outermost, so that every response (errors from other middleware included)
    # carries the request id and every log line inside the request can name it.
    "sqs_app.middleware.RequestIdMiddleware",
    # api_requests_total and api_request_duration_seconds, by route pattern.
    "sqs_app.metrics.ApiMetricsMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files under gunicorn, where Django itself won't.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "sqs_app.middleware.RequestSizeLimitMiddleware",
    # Sessions, request.user and flash messages serve browsers (the admin, the
    # browsable API); a /sqs call with a bearer token skips them.
    "sqs_app.middleware.BrowserOnlySessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "sqs_app.middleware.BrowserOnlyAuthenticationMiddleware",
    "sqs_app.middleware.BrowserOnlyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "wipsie_site.urls"
CSRF_FAILURE_VIEW = "sqs_app.error_views.csrf_failure"
WSGI_APPLICATION = "wipsie_site.wsgi.application"
APPEND_SLASH = False  # The /sqs contract has no trailing slashes; never redirect a POST.

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

# --- Database ---------------------------------------------------------------

DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
# A request holds at most one connection, so a process never needs more than
# it has threads: gunicorn's GUNICORN_THREADS (the variable gunicorn.conf.py
# reads, default 4), one for a Celery pool process. psycopg's pool keeps
# DATABASE_POOL_SIZE connections open and opens up to DATABASE_MAX_OVERFLOW
# more when threads wait for one (the spec's SQLAlchemy-style names), closing
# them again after 10 idle minutes. The budget: k8s/configmap.yaml.
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=1)
DATABASE_MAX_OVERFLOW = env.int(
    "DATABASE_MAX_OVERFLOW", default=max(0, env.int("GUNICORN_THREADS", default=4) - DATABASE_POOL_SIZE)
)

# The web server's workers check their pool's idle connections every this many
# seconds instead of at every checkout, a round trip per request fewer
# (wipsie_site/db_pool.py); 0 keeps the check at every checkout. Well under
# 5 s: within 5 s of the database's return after an outage no request fails
# (tests/e2e/test_outages.py), so no connection it dropped may wait longer.
DATABASE_POOL_CHECK_SECONDS = env.float("DATABASE_POOL_CHECK_SECONDS", default=2.0)

DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": DATABASE_POOL_SIZE,
        "max_size": DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW,
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool owns connection lifetime
    # With a pool, Django has psycopg check each connection (an empty query) as
    # it is handed out: after the database comes back, a connection that broke
    # meanwhile is replaced instead of failing the request that drew it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn threads and a worker write to one file: wait for the lock
    # instead of failing at once, and take the write lock at BEGIN so that two
    # writers never deadlock upgrading a read lock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (make run, tests), serve straight from the apps' folders.
WHITENOISE_USE_FINDERS = True

# --- API server -------------------------------------------------------------

API_HOST = env.str("API_HOST", default="0.0.0.0")  # noqa: S104 - containers listen on all
API_PORT = env.int("API_PORT", default=8000)
API_RELOAD = env.bool("API_RELOAD", default=False)
CORS_ALLOWED_ORIGINS = env_list("CORS_ORIGINS", ["http://localhost:4200"])

# The largest request body accepted at all: ten messages of SQS's maximum size
# plus JSON overhead. Larger bodies are refused with 413 before they are read.
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=3 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# Longer URLs (path and query) get 414 and longer headers 431, in the envelope.
# gunicorn.conf.py lets larger ones through to Django so that it can answer.
MAX_URL_BYTES = env.int("MAX_URL_BYTES", default=8 * 1024)
MAX_HEADER_BYTES = env.int("MAX_HEADER_BYTES", default=16 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # JWT first: its WWW-Authenticate header makes an anonymous request a 401.
        # simplejwt's, with the user cached for AUTH_USER_CACHE_SECONDS (sqs_app/authentication.py).
        "sqs_app.authentication.CachedUserJWTAuthentication",
        # DRF's, with CSRF failures answered as CSRF_FAILED.
        "sqs_app.api.csrf.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # DRF's JSON parser, refusing too-deep nesting before it recurses into it.
    "DEFAULT_PARSER_CLASSES": ["sqs_app.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "sqs_app.throttling.AnonRateThrottle",
        "sqs_app.throttling.UserRateThrottle",
    ],
    # How many proxies (load balancer, ingress) stand in front of Wipsie. 0:
    # the client is REMOTE_ADDR and X-Forwarded-For is ignored (a client could
    # forge it). N: the address the outermost of the N proxies appended.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/minute"),
        "user": env.str("API_THROTTLE_USER", default="6000/minute"),
    },
    "EXCEPTION_HANDLER": "sqs_app.errors.envelope_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# Throttling keeps its counters in the cache: per process by default (local
# development). In production give every process one shared cache, so that a
# limit is a limit across pods: CACHE_URL=redis://host:6379/0 (Django's Redis
# backend; the redis client is installed), or CACHE_URL=dbcache://wipsie_cache
# after `manage.py createcachetable`. sqs_app.throttling lets requests through
# if that cache is down.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

JWT_ALGORITHM = env.str("JWT_ALGORITHM", default="HS256")
JWT_EXPIRATION_HOURS = env.int("JWT_EXPIRATION_HOURS", default=24)
# JWTs are signed with a key of their own: by default derived from SECRET_KEY
# for this purpose only, so that no other key Wipsie hands out can sign one.
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default="") or derived_secret("jwt-signing-key")
SIMPLE_JWT = {
    "ALGORITHM": JWT_ALGORITHM,
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "ACCESS_TOKEN_LIFETIME": timedelta(hours=JWT_EXPIRATION_HOURS),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=env.int("JWT_REFRESH_EXPIRATION_HOURS", default=168)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Tokens carry a hash of the password hash, so that a password change
    # refuses them (sqs_app.authentication checks it against the cached user).
    "CHECK_REVOKE_TOKEN": True,
    # A refresh token works once: refreshing returns a new one and blacklists
    # the old (token_blacklist), and POST /api/token/logout/ blacklists it too.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}
# How long an API process keeps an authenticated user instead of reading it on
# every request; a password change or deactivation is refused within this time
# in every process (at once in the one that saved it). At most 60 s.
AUTH_USER_CACHE_SECONDS = env.int("AUTH_USER_CACHE_SECONDS", default=60)
if not 0 <= AUTH_USER_CACHE_SECONDS <= 60:
    raise ImproperlyConfigured("AUTH_USER_CACHE_SECONDS must be between 0 and 60")

SPECTACULAR_SETTINGS = {
    "TITLE": "Wipsie API",
    "DESCRIPTION": (
        "Send, receive and track messages on Wipsie's Amazon SQS queues. Every error "
        "uses one envelope: {error: {code, message, details, timestamp, request_id}}."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ loads Swagger UI from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several responses have a "status" field with different choices: name each set.
    "ENUM_NAME_OVERRIDES": {
        "MessageStatusEnum": "sqs_app.models.MessageStatus",
        "EventKindEnum": "sqs_app.models.EventKind",
        "BatchEntryStatusEnum": ["sent", "failed"],
        "HealthStatusEnum": ["ok", "error"],
    },
}

# --- The admin (django-unfold) --------------------------------------------------

UNFOLD = {
    "SITE_TITLE": "Wipsie",
    "SITE_HEADER": "Wipsie",
    "SITE_SUBHEADER": "SQS operations console",
    "SITE_SYMBOL": "hub",
    # "View site": Wipsie has no public site; the API documentation is the nearest thing.
    "SITE_URL": "/api/docs/",
    "SHOW_VIEW_ON_SITE": False,
    "DASHBOARD_CALLBACK": "sqs_app.admin.dashboard.dashboard_callback",
    "STYLES": [lambda request: static("wipsie/admin.css")],
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": False,
        "navigation": "sqs_app.admin.navigation.sidebar",
    },
}

# unfold's login form carries no "next" field: after a plain login, go to the dashboard.
LOGIN_REDIRECT_URL = "admin:index"

# An operator run (sqs_app.operations.runs) is held by one worker at a time, under a
# lease renewed with every item: when its worker dies, another takes it over this
# long after its last item. Longer than the slowest pace (10 s between items).
OPERATOR_RUN_LEASE_SECONDS = env.int("OPERATOR_RUN_LEASE_SECONDS", default=60)

# The admin's SQS reads (dashboard, queues page) give up quickly: a hung SQS
# shows a notice within seconds instead of holding the page for minutes.
SQS_ADMIN_TIMEOUT_SECONDS = env.float("SQS_ADMIN_TIMEOUT_SECONDS", default=1.0)

# --- AWS and SQS ------------------------------------------------------------

AWS_REGION = env.str("AWS_REGION", default="us-east-1")
# Optional: without them boto3 uses its normal chain (instance role, ~/.aws, ...).
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default=None)
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default=None)
# boto3 reads this standard variable itself; we read it too, to derive the broker URL.
AWS_ENDPOINT_URL_SQS = env.str("AWS_ENDPOINT_URL_SQS", default=None)
# SNS delivers SMS and push notifications; same convention as SQS.
AWS_ENDPOINT_URL_SNS = env.str("AWS_ENDPOINT_URL_SNS", default=None)

SQS_QUEUE_PREFIX = env.str("SQS_QUEUE_PREFIX", default="wipsie-")
# The spec's setting, kept for compatibility. Wipsie resolves queue URLs by name
# (GetQueueUrl, once per process), which works on AWS and on any emulator alike.
SQS_ACCOUNT_ID = env.str("SQS_ACCOUNT_ID", default="554510949034")
# A message is dead-lettered by SQS itself after this many receives without a delete.
SQS_MAX_RECEIVE_COUNT = env.int("SQS_MAX_RECEIVE_COUNT", default=10)
SQS_MAX_MESSAGE_BYTES = env.int("SQS_MAX_MESSAGE_BYTES", default=256 * 1024)
# Connections in the boto3 pool: one per web-server thread, plus headroom.
SQS_MAX_POOL_CONNECTIONS = env.int("SQS_MAX_POOL_CONNECTIONS", default=50)
SQS_CONNECT_TIMEOUT_SECONDS = env.float("SQS_CONNECT_TIMEOUT_SECONDS", default=3.0)
# Must exceed the longest long-poll (20 s) that /sqs/receive allows.
SQS_READ_TIMEOUT_SECONDS = env.float("SQS_READ_TIMEOUT_SECONDS", default=30.0)

# --- Celery -----------------------------------------------------------------


def derive_broker_url() -> str:
    """The SQS broker URL for kombu, pointing at the same SQS as the API and admin.

    kombu takes the endpoint from the URL's host and port, and the credentials
    from its user and password, which must be URL-quoted (secrets contain '/').
    """
    user = safequote(AWS_ACCESS_KEY_ID) if AWS_ACCESS_KEY_ID else ""
    password = safequote(AWS_SECRET_ACCESS_KEY) if AWS_SECRET_ACCESS_KEY else ""
    credentials = f"{user}:{password}@" if user else ""
    if AWS_ENDPOINT_URL_SQS:
        endpoint = urlsplit(AWS_ENDPOINT_URL_SQS)
        return f"sqs://{credentials}{endpoint.netloc}"
    return f"sqs://{credentials}"


CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or derive_broker_url()
# kombu's SQS transport, in a subclass Wipsie owns (tasks_app.sqs_transport):
# it survives SQS outages that kill the stock consumer, keeps the visibility
# of held messages extended, and never deletes or re-publishes a rejected one.
CELERY_BROKER_TRANSPORT = "tasks_app.sqs_transport:Transport"
# How long a received message stays hidden from other workers. Short, so that
# the message of a worker that died comes back within about a minute; the
# worker's main process extends it while the message is held (queued in the
# worker or running), so a long task keeps its message.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=30)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "region": AWS_REGION,
    "is_secure": not (AWS_ENDPOINT_URL_SQS or "").startswith("http://"),
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "wait_time_seconds": env.int("CELERY_WAIT_TIME_SECONDS", default=10),
    # How soon a busy worker looks at the queue again once a task slot frees up.
    # Measured with bench/ (one worker, 2 processes): kombu's default 1 s gave
    # 2 tasks/s, 0.1 s gave 14, 0.02 s gave 28 and even less idle CPU, since an
    # idle worker waits in SQS long polls, not in this interval.
    "polling_interval": env.float("CELERY_POLLING_INTERVAL", default=0.02),
    # `predefined_queues` (the queue URLs) is filled in by the transport at
    # connect time, from sqs_client: no ListQueues, no queue creation by kombu.
}
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="tasks_app.results:RecordingResultBackend")
CELERY_RESULT_EXTENDED = True
# No STARTED result: the history row already says `processing`, and a failed
# STARTED write (database down) makes Celery acknowledge, i.e. delete, the
# message before any Wipsie code runs (FACTS.md).
CELERY_TASK_TRACK_STARTED = False
# Celery's Django fixup closes the database connection around every task
# unless this is set: one new PostgreSQL connection per task otherwise.
# Each pool process keeps its connection for this many tasks (CONN_MAX_AGE
# and health checks still apply).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_SERIALIZER = env.str("CELERY_TASK_SERIALIZER", default="json")
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = env_list("CELERY_ACCEPT_CONTENT", ["json"])
CELERY_TIMEZONE = TIME_ZONE
# Wipsie's own Celery tasks (beat's scheduled polls) travel on a queue of their
# own, `wipsie-celery`, known to kombu by its logical name "celery". Message
# processing never goes through it: workers run each message straight off its
# family's queue (tasks_app.worker).
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Reliability with SQS: acknowledge (delete) only after the task finished, and
# give the message back if the worker process dies under it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A receive takes up to ten messages (SQS's maximum) when this many task slots
# are free: prefetch = concurrency x multiplier (10 with 2 processes). Held
# messages keep their visibility extended, so prefetching loses nothing.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=5)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# The worker's consumer turns plain SQS messages into Celery task messages.
CELERY_WORKER_CONSUMER = "tasks_app.worker:MessageConsumer"
# SQS has no broadcast: Celery's remote control, events, gossip and mingle
# would each need queues of their own (and ListQueues rights).
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_WORKER_SEND_TASK_EVENTS = False
# Recurring polls are django-celery-beat PeriodicTasks in the database (no
# schedule file: beat runs as a non-root user on a read-only filesystem). Its
# DatabaseScheduler, touching beat's heartbeat file on every tick (at least
# every 5 s): beat's liveness probe.
CELERY_BEAT_SCHEDULER = "tasks_app.scheduler:HeartbeatScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Workers ----------------------------------------------------------------

# The queues a worker consumes, by logical name: the three task families and
# "celery" (Wipsie's own tasks). `celery -A wipsie_site worker -Q notifications`
# overrides it for a worker dedicated to one family. `default` is left to API
# clients that pull with /sqs/receive.
WIPSIE_WORKER_QUEUES = env_list(
    "WIPSIE_WORKER_QUEUES", ["data_polling", "task_processing", "notifications", "celery"]
)
CELERY_TASK_QUEUES = [Queue(name) for name in WIPSIE_WORKER_QUEUES]
# The consumer touches WIPSIE_HEARTBEAT_FILE (default /tmp/wipsie-heartbeat) on
# every poll (tasks_app.heartbeat, which reads the variable itself): `python -m
# tasks_app.heartbeat --max-age 60` is the worker's liveness probe. A worker
# whose consumer has not polled for WIPSIE_WORKER_STALL_SECONDS exits (status
# 70) so that its supervisor restarts it; 0 turns the watchdog off.
WIPSIE_WORKER_STALL_SECONDS = env.float("WIPSIE_WORKER_STALL_SECONDS", default=120.0)
# Every process can see which queues have consumers that stopped polling
# (tasks_app.consumers): each worker records its last poll of each queue in
# the database every WIPSIE_CONSUMER_RECORD_SECONDS. /health flags a queue
# whose consumers have all been silent for WIPSIE_WORKER_STALL_SECONDS (0:
# never); a consumer silent for WIPSIE_CONSUMER_FORGET_SECONDS (killed and
# never back) is forgotten.
WIPSIE_CONSUMER_RECORD_SECONDS = env.float("WIPSIE_CONSUMER_RECORD_SECONDS", default=5.0)
WIPSIE_CONSUMER_FORGET_SECONDS = env.float("WIPSIE_CONSUMER_FORGET_SECONDS", default=3600.0)
# Retries wait TASK_RETRY_BASE_SECONDS * 2**(attempt - 1): 60 s, 120 s, 240 s by
# default, on the message's own queue (a visibility change, never a copy).
TASK_RETRY_BASE_SECONDS = env.float("TASK_RETRY_BASE_SECONDS", default=60.0)
TASK_MAX_RETRIES = env.int("TASK_MAX_RETRIES", default=3)
# A message whose outcome could not be recorded (the database or the DLQ is
# down) comes back after 10 s, doubling with each receive, up to this. Every
# receive counts toward SQS_MAX_RECEIVE_COUNT: with 300 s, the database may be
# away for about 20 minutes before SQS's own redrive policy would take over.
TASK_UNRECORDED_RETRY_MAX_SECONDS = env.int("TASK_UNRECORDED_RETRY_MAX_SECONDS", default=300)
if SQS_MAX_RECEIVE_COUNT < TASK_MAX_RETRIES + 2:
    # The queue's redrive policy is a safety net behind Wipsie's own
    # dead-lettering (after TASK_MAX_RETRIES + 1 attempts); it must never fire first.
    raise ImproperlyConfigured(
        f"SQS_MAX_RECEIVE_COUNT ({SQS_MAX_RECEIVE_COUNT}) must be at least TASK_MAX_RETRIES + 2 "
        f"({TASK_MAX_RETRIES + 2}), so that SQS's redrive policy cannot dead-letter a message "
        "before Wipsie has made all its attempts."
    )
# Webhooks carry X-Wipsie-Signature: sha256=HMAC(secret, raw body). Receivers
# hold this key, so it is never SECRET_KEY (which would let them sign JWTs):
# by default it is derived from SECRET_KEY one-way, for this purpose only.
WEBHOOK_SIGNING_SECRET = env.str("WEBHOOK_SIGNING_SECRET", default="") or derived_secret("webhook-signing")
if WEBHOOK_SIGNING_SECRET in (SECRET_KEY, JWT_SIGNING_KEY):
    raise ImproperlyConfigured(
        "WEBHOOK_SIGNING_SECRET must differ from SECRET_KEY and JWT_SIGNING_KEY: every webhook "
        "receiver holds it, and with either of those it could sign sessions or JWTs."
    )
# Outbound HTTP (polling, webhooks) may reach private and loopback addresses only
# when this is on (local development); link-local and cloud metadata never.
OUTBOUND_ALLOW_PRIVATE_NETWORKS = env.bool("OUTBOUND_ALLOW_PRIVATE_NETWORKS", default=False)
OUTBOUND_TIMEOUT_SECONDS = env.float("OUTBOUND_TIMEOUT_SECONDS", default=10.0)
OUTBOUND_MAX_RESPONSE_BYTES = env.int("OUTBOUND_MAX_RESPONSE_BYTES", default=1024 * 1024)
# How much of a polled payload is kept with each poll result.
POLL_RESULT_MAX_BYTES = env.int("POLL_RESULT_MAX_BYTES", default=64 * 1024)

# --- Metrics ------------------------------------------------------------------

# Who may scrape /metrics: a bearer token, and/or addresses and networks. With
# neither, only loopback. Prometheus in Kubernetes scrapes pod IPs: give it the
# token (preferred) or the pod network's CIDR.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", [] if METRICS_TOKEN else ["127.0.0.1", "::1"])
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(item, strict=False) for item in METRICS_ALLOWED_IPS]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {exc}") from exc
# Queue gauges are read from SQS at most this often per process, whatever the scrape rate.
METRICS_CACHE_SECONDS = env.float("METRICS_CACHE_SECONDS", default=15.0)
# A worker serves its metrics on this port (0: not at all); needs PROMETHEUS_MULTIPROC_DIR.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)

# --- Retention ----------------------------------------------------------------

# `manage.py history_prune` deletes message history and poll results older than
# this. Keep it above SQS's own retention (at most 14 days): an older message
# can no longer be on any queue, so its row can no longer be settled.
HISTORY_RETENTION_DAYS = env.int("HISTORY_RETENTION_DAYS", default=30)

# --- Logging ----------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOG_FILE = env.str("LOG_FILE", default=None)

_log_handlers = {
    "console": {
        "class": "logging.StreamHandler",
        "formatter": LOG_FORMAT if LOG_FORMAT in ("json", "text") else "json",
        "filters": ["request_id"],
    },
}
if LOG_FILE:
    _log_handlers["file"] = {
        "class": "logging.handlers.WatchedFileHandler",  # plays well with logrotate
        "filename": LOG_FILE,
        "formatter": _log_handlers["console"]["formatter"],
        "filters": ["request_id"],
    }

# dictConfig, plus Python warnings as records (py.warnings) rather than plain stderr text.
LOGGING_CONFIG = "sqs_app.logging.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "sqs_app.logging.RequestIdFilter"},
        "celery_results": {"()": "sqs_app.logging.CeleryResultFilter"},
    },
    "formatters": {
        # One JSON object per line; a traceback is the `exc_info` field of its record.
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "timestamp", "levelname": "level", "name": "logger"},
            # The text format's helper field; JSON has the fields themselves.
            "reserved_attrs": [*RESERVED_ATTRS, "context"],
        },
        "text": {
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s%(context)s",
        },
    },
    "handlers": _log_handlers,
    "root": {"handlers": list(_log_handlers), "level": LOG_LEVEL},
    "loggers": {
        # The API's own error envelope already reports request errors.
        "django.request": {"level": "ERROR"},
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "celery.app.trace": {"filters": ["celery_results"]},
    },
}
# Celery would otherwise turn every write to stdout/stderr (a traceback printed
# by a library, fragment by fragment) into log records of its own: keep them
# as they are, and let real log records come through the handlers above.
CELERY_WORKER_REDIRECT_STDOUTS = False

# --- Email (notifications) ---------------------------------------------------

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
if "EMAIL_FILE_PATH" in vars() and not EMAIL_FILE_PATH.startswith("/"):  # noqa: F821
    # django-environ drops the leading slash of filemail:///abs/path; put it back.
    EMAIL_FILE_PATH = "/" + EMAIL_FILE_PATH  # noqa: F821
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="wipsie@localhost")

# --- Security in production ---------------------------------------------------
#
# Wipsie runs behind a TLS-terminating proxy (a load balancer, an ingress) that
# sets X-Forwarded-Proto: https; the proxy must overwrite any such header a
# client sends. With DEBUG off, plain-HTTP requests are redirected to HTTPS,
# except the health and metrics paths that probes and Prometheus call directly,
# and browsers are told to use HTTPS only (HSTS) for a year.

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health(/live)?$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# Preloading commits the whole domain to HTTPS in browsers for months; that is
# the domain owner's decision, so it is off unless asked for, and Django's
# reminder about it (security.W021) is silenced while it is off.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
