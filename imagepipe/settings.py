"""ImagePipe settings, read from the environment (see .env.example).

Defaults run everything on one machine: the services started by
``scripts/services.sh`` on loopback and files under ``var/``.
"""

from pathlib import Path
from typing import Any

from .env import (
    DEFAULT_DATABASE_URL,
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    require,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("IMAGEPIPE_VAR", str(BASE_DIR / "var")))

# PRODUCTION=true: no debug, HTTPS only, secure cookies, HSTS, and a secret and host names that
# must come from the environment (`manage.py check --deploy` passes; tests/test_production.py).
PRODUCTION = env_bool("PRODUCTION", False)
DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1]")
if PRODUCTION:
    require(
        SECRET_KEY != DEV_SECRET_KEY and len(SECRET_KEY) >= 50, "PRODUCTION needs SECRET_KEY, 50+ characters"
    )
    require(not DEBUG, "PRODUCTION runs with DEBUG off")
    require(bool(ALLOWED_HOSTS), "PRODUCTION needs ALLOWED_HOSTS")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = True
    if env_bool("TRUST_X_FORWARDED_PROTO", False):  # behind a TLS-terminating proxy
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "jobs",
    "pipeline",
    "system",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "imagepipe.urls"
ASGI_APPLICATION = "imagepipe.asgi.application"

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

DATABASES = {"default": database_from_url(env_str("DATABASE_URL", DEFAULT_DATABASE_URL))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Every websocket of one web process reads from one Redis queue, and group_send silently drops
# an event once that queue holds `capacity` of them. At the default 100, a process that stalled
# while a job sent 2,000 tile events got 101 of them and no final status; even reading along it
# lost a quarter (tests/jobs/test_consumers.py). 10,000 holds two whole jobs of MAX_TILES_PER_JOB
# (~4 MB in Redis). `expiry` drops events a stalled process has not read within a minute, and
# with them the queue of a process that died. A client that loses events all the same sees the
# gap in tiles_done, or a long silence, and asks for a snapshot (README "Websocket").
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "capacity": 10_000, "expiry": 60},
    }
}

# Where people reach the dashboard: `manage.py submit` prints <SITE_URL>/jobs/<id>/ for a job.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# Every password a person sets (the admin, changepassword, the password-reset form) is checked.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
SERVE_STATIC = env_bool("SERVE_STATIC", True)  # daphne serves /static/ itself when on
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# S3-compatible object storage (AWS, MinIO, ...) for originals, tiles and results when a bucket
# is named: web and collector on different machines then share files without a shared disk.
# Downloads redirect to short-lived signed URLs; nothing is public.
S3_BUCKET = env_str("S3_BUCKET", "")
if S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL", "") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY", "") or None,
            "region_name": env_str("S3_REGION", "us-east-1"),
            "querystring_auth": True,
            "querystring_expire": env_int("S3_URL_EXPIRE_SECONDS", 300),
            "default_acl": None,
            "file_overwrite": True,
        },
    }
# Uploads bigger than this are streamed to a temporary file rather than kept in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "imagepipe.api_errors.json_errors",
}
# Per user; counted in the shared cache, so every web process counts together.
JOB_SUBMIT_RATE = env_str("JOB_SUBMIT_RATE", "60/minute")
METRICS_TOKEN = env_str("METRICS_TOKEN", "")  # lets a Prometheus scraper read /metrics
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("CACHE_URL", "redis://127.0.0.1:6379/1"),
        "KEY_PREFIX": "imagepipe",
        "OPTIONS": {"serializer": "imagepipe.cache.JSONSerializer"},  # never unpickles (imagepipe/cache.py)
    }
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ImagePipe API",
    "DESCRIPTION": "Submit images with an operation chain; follow jobs, tiles and workers.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # A job's status appears in two components (the job, and the job POST /api/jobs/ answers).
    "ENUM_NAME_OVERRIDES": {"JobStatusEnum": "jobs.models.Job.Status"},
}

# Kafka: one place for addresses, topic names and sizes (imagepipe/kafka.py reads these).
KAFKA_BOOTSTRAP_SERVERS = env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
KAFKA_TOPIC_PREFIX = env_str("KAFKA_TOPIC_PREFIX", "")
KAFKA_TASK_PARTITIONS = env_int("KAFKA_TASK_PARTITIONS", 4)
KAFKA_RESULT_PARTITIONS = env_int("KAFKA_RESULT_PARTITIONS", 2)
KAFKA_REPLICATION_FACTOR = env_int("KAFKA_REPLICATION_FACTOR", 1)
KAFKA_MAX_MESSAGE_BYTES = env_int("KAFKA_MAX_MESSAGE_BYTES", 32 * 1024 * 1024)
KAFKA_COMPRESSION = env_str("KAFKA_COMPRESSION", "lz4")
# A consumer silent this long leaves its group and its partitions move on (a killed worker's, say).
KAFKA_SESSION_TIMEOUT_MS = env_int("KAFKA_SESSION_TIMEOUT_MS", 10_000)

# Jobs and tiles.
TILE_SIZE_DEFAULT = env_int("TILE_SIZE_DEFAULT", 512)
TILE_SIZE_MIN = env_int("TILE_SIZE_MIN", 16)
TILE_SIZE_MAX = env_int("TILE_SIZE_MAX", 2048)
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 100 * 1024 * 1024)
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 200_000_000)
MAX_IMAGE_SIDE = env_int("MAX_IMAGE_SIDE", 100_000)
MAX_TILES_PER_JOB = env_int("MAX_TILES_PER_JOB", 4096)  # every stage's tiles, counted together
MAX_ICC_PROFILE_BYTES = env_int("MAX_ICC_PROFILE_BYTES", 512 * 1024)  # larger profiles are dropped
RESULT_PNG_COMPRESS_LEVEL = env_int("RESULT_PNG_COMPRESS_LEVEL", 1)
RESULT_PNG_THREADS = env_int("RESULT_PNG_THREADS", 4)  # strips of the result PNG deflated at once

# Quotas per user, checked as a job is submitted (jobs/quotas.py): unfinished jobs, their input
# pixels together, and what the user's jobs hold in storage (MB of 2**20 bytes). 0 is no limit.
# Staff have none; in the admin they set one user's own (User limits) and allow priority high.
QUOTA_UNFINISHED_JOBS = env_int("QUOTA_UNFINISHED_JOBS", 50)
QUOTA_QUEUED_MEGAPIXELS = env_int("QUOTA_QUEUED_MEGAPIXELS", 2000)
QUOTA_STORED_MB = env_int("QUOTA_STORED_MB", 10240)

# Retention (pipeline/retention.py; `manage.py prune`, and the dispatcher when it is idle): ended
# jobs not marked keep are deleted with their files this many days after they ended, workers' and
# collectors' rows this many days after they were last seen; 0 keeps them forever. The dispatcher
# prunes at most once an interval (0: never; the command still does).
JOB_RETENTION_DAYS = env_int("JOB_RETENTION_DAYS", 30)
WORKER_RETENTION_DAYS = env_int("WORKER_RETENTION_DAYS", 7)
PRUNE_INTERVAL_SECONDS = env_float("PRUNE_INTERVAL_SECONDS", 3600.0)
require(
    min(QUOTA_UNFINISHED_JOBS, QUOTA_QUEUED_MEGAPIXELS, QUOTA_STORED_MB) >= 0
    and min(JOB_RETENTION_DAYS, WORKER_RETENTION_DAYS, PRUNE_INTERVAL_SECONDS) >= 0,
    "QUOTA_*, *_RETENTION_DAYS and PRUNE_INTERVAL_SECONDS must not be negative",
)

# Workers.
WORKER_ID = env_str("WORKER_ID", "")  # default: <host>-<pid>
WORKER_HEARTBEAT_SECONDS = env_float("WORKER_HEARTBEAT_SECONDS", 5.0)
WORKER_STALE_AFTER_SECONDS = env_float("WORKER_STALE_AFTER_SECONDS", 15.0)
WORKER_OFFLINE_AFTER_SECONDS = env_float("WORKER_OFFLINE_AFTER_SECONDS", 60.0)
WORKER_MAX_ATTEMPTS = env_int("WORKER_MAX_ATTEMPTS", 3)  # tries per tile before tasks.dlq
# Added to a worker's niceness at start: on a machine it shares with the dispatcher, the collector
# and the services, they get a core the moment they need one, and the workers take the rest.
# 0 on a machine of its own.
WORKER_NICE = env_int("WORKER_NICE", 10)
require(0 <= WORKER_NICE <= 19, f"WORKER_NICE must be 0..19, got {WORKER_NICE}")
# "fast": the exact faster routes of imagepipe/core/kernels.py where proven; "pillow": Pillow only.
WORKER_KERNELS = env_str("WORKER_KERNELS", "fast")
require(
    WORKER_KERNELS in ("fast", "pillow"), f"WORKER_KERNELS must be fast or pillow, got {WORKER_KERNELS!r}"
)

# Recovery, run by the collector.
TILE_DEADLINE_SECONDS = env_float("TILE_DEADLINE_SECONDS", 300.0)  # no progress this long: re-dispatch
TILE_MAX_DISPATCHES = env_int("TILE_MAX_DISPATCHES", 5)  # then the job fails
COLLECTOR_SWEEP_SECONDS = env_float("COLLECTOR_SWEEP_SECONDS", 10.0)
# Results the collector records in one transaction, at most: what has arrived, up to this many.
COLLECTOR_BATCH_MAX = env_int("COLLECTOR_BATCH_MAX", 100)
# Memory the collector may hold results in as their tiles come (jobs/canvas.py); beyond, from storage.
COLLECTOR_CANVAS_MB = env_int("COLLECTOR_CANVAS_MB", 1024)
# The dispatcher (manage.py rundispatcher): tiles in flight per live worker, the least in flight
# before any worker has been seen, how often it looks for room, decoded stage inputs it keeps.
DISPATCH_TILES_PER_WORKER = env_int("DISPATCH_TILES_PER_WORKER", 2)
DISPATCH_WINDOW_MIN = env_int("DISPATCH_WINDOW_MIN", 4)
DISPATCH_AHEAD_SECONDS = env_float("DISPATCH_AHEAD_SECONDS", 1.0)
DISPATCH_POLL_SECONDS = env_float("DISPATCH_POLL_SECONDS", 1.0)
DISPATCH_CACHED_IMAGES = env_int("DISPATCH_CACHED_IMAGES", 4)

# Every consumer's watchdog (imagepipe/watchdog.py): rebuilt when stuck this long (3 session
# timeouts by default); the collector's report in the database is stale after COLLECTOR_STALE_SECONDS.
CONSUMER_STALL_SECONDS = env_float("CONSUMER_STALL_SECONDS", 3 * KAFKA_SESSION_TIMEOUT_MS / 1000)
CONSUMER_CHECK_SECONDS = env_float("CONSUMER_CHECK_SECONDS", 5.0)
COLLECTOR_REPORT_SECONDS = env_float("COLLECTOR_REPORT_SECONDS", 2.0)
COLLECTOR_STALE_SECONDS = env_float("COLLECTOR_STALE_SECONDS", 30.0)

# Web server and logins.
# imagepipe/webserver.py refuses a body past this while it arrives (413), the upload plus room for
# the multipart framing and the other fields, and one that takes longer than the timeout (408).
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", MAX_UPLOAD_BYTES + 1024 * 1024)
REQUEST_BODY_TIMEOUT_SECONDS = env_float("REQUEST_BODY_TIMEOUT_SECONDS", 60.0)
# Wrong passwords, counted in the shared cache per username and per client address; past either
# limit every login there is refused, the right password too, until the window has passed.
AUTHENTICATION_BACKENDS = ["imagepipe.logins.ThrottledModelBackend"]
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 5)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900)
# Reverse proxies whose X-Forwarded-For is believed (the login throttle's client address).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
