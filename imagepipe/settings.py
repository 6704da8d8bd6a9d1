"""ImagePipe settings, read from the environment (see .env.example).

Defaults run everything on one machine: the services started by
``scripts/services.sh`` on loopback and files under ``var/``.
"""

from pathlib import Path
from typing import Any

from . import production
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

# PRODUCTION=true: no debug, HTTPS only, secure cookies, HSTS, and host names that must come from
# the environment (`manage.py check --deploy` passes; tests/test_production.py). DEBUG is off
# unless asked for, here as anywhere.
PRODUCTION = env_bool("PRODUCTION", False)
DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
# In production no secret and no service has a default: a process is given only what its role
# uses (a worker holds the broker's credentials alone) and checks at start that it has that
# much (imagepipe/needs.py); whatever it is given must be real (imagepipe/production.py).
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1]")
if PRODUCTION:
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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "imagepipe.logins",
    "jobs",
    "pipeline",
    "system",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # /static/, before anything reads a session
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

# Production: none unless given. An empty DATABASES is Django's dummy backend, which refuses every
# query: a process that was given no database (a worker) can't use one by accident.
DATABASE_URL = env_str("DATABASE_URL", "" if PRODUCTION else DEFAULT_DATABASE_URL)
DATABASES = {"default": database_from_url(DATABASE_URL)} if DATABASE_URL else {}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "" if PRODUCTION else "redis://127.0.0.1:6379/0")
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
        # A consumer waits for its next message in a 5 s BZPOPMIN (channels_redis); redis-py 8's
        # default socket timeout is 5 s too, so a reply that came a little late under load was a
        # TimeoutError that ended the websocket's consumer. The socket may wait longer than that.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "capacity": 10_000, "expiry": 60},
    }
}
if not REDIS_URL:  # production, a process given no Redis: no layer, rather than one on loopback
    CHANNEL_LAYERS = {}

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
# WhiteNoise serves /static/ from the web process. In production from STATIC_ROOT, which the image's
# build fills (collectstatic): every name hashed, so browsers may keep a file for ever, with a
# compressed copy beside it. Elsewhere straight from the apps' folders, re-read as they change,
# with no collectstatic to run. SERVE_STATIC=false when a proxy or CDN serves them instead.
SERVE_STATIC = env_bool("SERVE_STATIC", True)
if not SERVE_STATIC:
    MIDDLEWARE.remove("whitenoise.middleware.WhiteNoiseMiddleware")
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = not PRODUCTION
STATIC_STORAGE = (
    "whitenoise.storage.CompressedManifestStaticFilesStorage"
    if PRODUCTION
    else "django.contrib.staticfiles.storage.StaticFilesStorage"
)
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": STATIC_STORAGE},
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
        "imagepipe.logins.authentication.ExpiringTokenAuthentication",
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
CACHE_URL = env_str("CACHE_URL", "" if PRODUCTION else "redis://127.0.0.1:6379/1")
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": "imagepipe",
        "OPTIONS": {"serializer": "imagepipe.cache.JSONSerializer"},  # never unpickles (imagepipe/cache.py)
    }
}
if not CACHE_URL:  # production, a process given no cache: only the web counts in it (needs.py)
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
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
KAFKA_BOOTSTRAP_SERVERS = env_str("KAFKA_BOOTSTRAP_SERVERS", "" if PRODUCTION else "127.0.0.1:9092")
KAFKA_TOPIC_PREFIX = env_str("KAFKA_TOPIC_PREFIX", "")
KAFKA_TASK_PARTITIONS = env_int("KAFKA_TASK_PARTITIONS", 4)
KAFKA_RESULT_PARTITIONS = env_int("KAFKA_RESULT_PARTITIONS", 2)
KAFKA_REPLICATION_FACTOR = env_int("KAFKA_REPLICATION_FACTOR", 1)
KAFKA_MAX_MESSAGE_BYTES = env_int("KAFKA_MAX_MESSAGE_BYTES", 32 * 1024 * 1024)
# Messages a consumer (worker, collector) fetches ahead of its work, in MB (librdkafka's default).
KAFKA_CONSUMER_QUEUE_MB = env_int("KAFKA_CONSUMER_QUEUE_MB", 64)
# Producer compression: none by default, as tiles of photographs hardly compress and every broker
# and client then pays to (de)compress them (bench/README, "Big images").
KAFKA_COMPRESSION = env_str("KAFKA_COMPRESSION", "none")
# A consumer silent this long leaves its group and its partitions move on (a killed worker's, say).
KAFKA_SESSION_TIMEOUT_MS = env_int("KAFKA_SESSION_TIMEOUT_MS", 10_000)
# How long the broker keeps tasks and results (tile pixels), and how much per partition at most;
# dead letters are kept longer, to be looked at.
KAFKA_TILE_RETENTION_HOURS = env_int("KAFKA_TILE_RETENTION_HOURS", 24)
KAFKA_TILE_RETENTION_MB = env_int("KAFKA_TILE_RETENTION_MB", 4096)
KAFKA_DEAD_LETTER_RETENTION_HOURS = env_int("KAFKA_DEAD_LETTER_RETENTION_HOURS", 7 * 24)
# Message signatures (pipeline/signing.py): the dispatcher and the workers hold the task key, the
# workers and the collector the result key. Unset outside production: derived from SECRET_KEY.
TASK_SIGNING_KEY = env_str("TASK_SIGNING_KEY", "")
RESULT_SIGNING_KEY = env_str("RESULT_SIGNING_KEY", "")

# Jobs and tiles.
TILE_SIZE_DEFAULT = env_int("TILE_SIZE_DEFAULT", 512)
TILE_SIZE_MIN = env_int("TILE_SIZE_MIN", 16)
TILE_SIZE_MAX = env_int("TILE_SIZE_MAX", 2048)
# The largest original, however it arrives: in one request (up to MAX_REQUEST_BYTES), in pieces
# (a resumable upload, jobs/resumable.py), or imported from storage.
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 4 * 1024**3)
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 4_000_000_000)
MAX_IMAGE_SIDE = env_int("MAX_IMAGE_SIDE", 100_000)
MAX_TILES_PER_JOB = env_int("MAX_TILES_PER_JOB", 16_384)  # every stage's tiles, counted together
# The job page's mosaic: a button per tile up to this many tiles a stage, drawn on a canvas beyond.
MOSAIC_BUTTONS_MAX = env_int("MOSAIC_BUTTONS_MAX", 2000)
# Zoomable views (pipeline/pyramids.py): the collector makes DeepZoom pyramids of the original and
# the result of every done job of PYRAMID_MIN_PIXELS or more (0: none), tiles as jpg (quality 85)
# or png (exact, larger); an image with alpha always gets png.
PYRAMID_MIN_PIXELS = env_int("PYRAMID_MIN_PIXELS", 16_000_000)
PYRAMID_TILE_FORMAT = env_str("PYRAMID_TILE_FORMAT", "jpg")
require(PYRAMID_TILE_FORMAT in ("jpg", "png"), "PYRAMID_TILE_FORMAT must be jpg or png")
# Resumable uploads: pieces of UPLOAD_CHUNK_BYTES, each its own request; an upload not added to for
# UPLOAD_EXPIRY_HOURS is deleted with its pieces; a user has at most UPLOADS_OPEN_MAX under way.
UPLOAD_CHUNK_BYTES = env_int("UPLOAD_CHUNK_BYTES", 8 * 1024 * 1024)
UPLOAD_EXPIRY_HOURS = env_float("UPLOAD_EXPIRY_HOURS", 24.0)
UPLOADS_OPEN_MAX = env_int("UPLOADS_OPEN_MAX", 10)
require(UPLOAD_EXPIRY_HOURS > 0, "UPLOAD_EXPIRY_HOURS must be positive")
require(UPLOADS_OPEN_MAX >= 1, "UPLOADS_OPEN_MAX must be 1 or more")
# Jobs from objects already in storage: a user may import keys under IMPORT_PREFIX<username>/,
# staff any key under IMPORT_PREFIX. Empty: no imports.
IMPORT_PREFIX = env_str("IMPORT_PREFIX", "imports/")
require(not IMPORT_PREFIX or IMPORT_PREFIX.endswith("/"), "IMPORT_PREFIX must end with '/' (or be empty)")
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
# ... and what their messages may hold, in MB (10 tiles of 512 px RGB): the collector holds a batch,
# and fetches about as much ahead of it (pipeline/kafka.py fetching_ahead).
COLLECTOR_BATCH_MB = env_int("COLLECTOR_BATCH_MB", 8)
# Memory the collector may hold results in as their tiles come (pipeline/canvas.py: a PNG's bands
# wait on disk and take none); beyond, from storage; 0: no canvas.
COLLECTOR_CANVAS_MB = env_int("COLLECTOR_CANVAS_MB", 256)
# Where rows wait on disk (the system's temporary folder by default): the collector's results before
# they are stored and a PNG's bands, the dispatcher's tile row of an original. RESULT_SPOOL_DIR is
# its name before 2026-12-04, still read.
SPOOL_DIR = env_str("SPOOL_DIR", "") or env_str("RESULT_SPOOL_DIR", "") or None
# The largest result encoded whole (WebP), in MB decoded; PNG, TIFF and JPEG are written band by band.
RESULT_WHOLE_MB = env_int("RESULT_WHOLE_MB", 1024)
# The dispatcher (manage.py rundispatcher): tiles in flight per live worker, the least in flight
# before any worker has been seen, how often it looks for room, decoded stage inputs it keeps.
DISPATCH_TILES_PER_WORKER = env_int("DISPATCH_TILES_PER_WORKER", 2)
DISPATCH_WINDOW_MIN = env_int("DISPATCH_WINDOW_MIN", 4)
DISPATCH_AHEAD_SECONDS = env_float("DISPATCH_AHEAD_SECONDS", 1.0)
DISPATCH_POLL_SECONDS = env_float("DISPATCH_POLL_SECONDS", 1.0)
DISPATCH_CACHED_IMAGES = env_int("DISPATCH_CACHED_IMAGES", 4)
# Pixels of stage inputs the dispatcher holds at most (pipeline/stages.py): an original read in
# bands holds a tile row of it; one decoded whole (GIF, BMP, a later stage) all of it, or fails.
DISPATCH_MEMORY_MB = env_int("DISPATCH_MEMORY_MB", 1024)

# Every consumer's watchdog (imagepipe/watchdog.py): rebuilt when stuck this long (3 session
# timeouts by default); the collector's report in the database is stale after COLLECTOR_STALE_SECONDS.
CONSUMER_STALL_SECONDS = env_float("CONSUMER_STALL_SECONDS", 3 * KAFKA_SESSION_TIMEOUT_MS / 1000)
CONSUMER_CHECK_SECONDS = env_float("CONSUMER_CHECK_SECONDS", 5.0)
COLLECTOR_REPORT_SECONDS = env_float("COLLECTOR_REPORT_SECONDS", 2.0)
COLLECTOR_STALE_SECONDS = env_float("COLLECTOR_STALE_SECONDS", 30.0)

# Storage against the database (jobs/sweep.py: manage.py sweep_storage, and the collector when
# idle, at most once an interval; 0: never from the collector). A file no row names is deleted
# only once older than the grace period: every file is written just before the row that names it
# commits, and an upload or a result may wait out a database outage in between.
SWEEP_INTERVAL_SECONDS = env_float("SWEEP_INTERVAL_SECONDS", 86_400.0)
SWEEP_GRACE_SECONDS = env_float("SWEEP_GRACE_SECONDS", 3_600.0)

# A job's websocket checks again, at least this often and before relaying an event once this
# long has passed, that its user may still see the job (still active, still logged in, the job
# still there); if not, it closes (jobs/consumers.py).
WEBSOCKET_ACCESS_CHECK_SECONDS = env_float("WEBSOCKET_ACCESS_CHECK_SECONDS", 10.0)

# Proof of life for a container's healthcheck (pipeline/liveness.py): the dispatcher, the collector
# and a worker touch this file after their steps, `python -m pipeline.liveness` fails once the last
# touch is older than the age (a long assembly is one step: the default leaves it room). Empty:
# no file (processes that share a machine would share it).
LIVENESS_FILE = env_str("LIVENESS_FILE", "")
LIVENESS_MAX_AGE_SECONDS = env_float("LIVENESS_MAX_AGE_SECONDS", 300.0)

# Web server and logins.
# imagepipe/webserver.py refuses a body past this while it arrives (413), and one that takes longer
# than the timeout (408). A file uploaded in one request has room for the multipart framing and the
# other fields beside it (1 MiB); a larger one comes as a resumable upload, in pieces.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 101 * 1024 * 1024)
require(
    UPLOAD_CHUNK_BYTES + 1024 * 1024 <= MAX_REQUEST_BYTES,
    "UPLOAD_CHUNK_BYTES must leave 1 MiB under MAX_REQUEST_BYTES",
)
REQUEST_BODY_TIMEOUT_SECONDS = env_float("REQUEST_BODY_TIMEOUT_SECONDS", 60.0)

# Logins (imagepipe/logins/throttle.py). From its LOGIN_FAILURES_PER_ACCOUNT-th wrong password,
# a username is locked out from that address for LOGIN_LOCKOUT_SECONDS, doubled with each further
# one up to LOGIN_LOCKOUT_MAX_SECONDS, the right password refused too while it waits; forgotten a
# window after its last failure or lockout. An address is refused past LOGIN_FAILURES_PER_ADDRESS
# wrong passwords (any usernames) within LOGIN_FAILURE_WINDOW_SECONDS of its first.
AUTHENTICATION_BACKENDS = ["imagepipe.logins.throttle.ThrottledModelBackend"]
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 5)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 60)
LOGIN_LOCKOUT_MAX_SECONDS = env_int("LOGIN_LOCKOUT_MAX_SECONDS", 3600)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900)
require(LOGIN_FAILURES_PER_ACCOUNT >= 1, "LOGIN_FAILURES_PER_ACCOUNT must be 1 or more")
require(
    0 < LOGIN_LOCKOUT_SECONDS <= LOGIN_LOCKOUT_MAX_SECONDS,
    "LOGIN_LOCKOUT_SECONDS must be positive and at most LOGIN_LOCKOUT_MAX_SECONDS",
)
# Reverse proxies whose X-Forwarded-For is believed (the login throttle's client address).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
# API tokens (imagepipe/logins/models.py) stop working this long after they were issued; a new
# password or a deactivated account revokes them at once.
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", 24 * 30)
require(API_TOKEN_TTL_HOURS >= 1, "API_TOKEN_TTL_HOURS must be 1 or more")

# Mail, for the password-reset pages: they are routed only when EMAIL_HOST names a mail server,
# so that no page promises a mail nothing can send.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "imagepipe@localhost")

# Whatever a production process was given must be real: no placeholder secret, a password on
# every database and Redis URL, a broker encrypted and authenticated (imagepipe/production.py).
if PRODUCTION:
    production.check_secret_key(SECRET_KEY)
    for name, url in (("DATABASE_URL", DATABASE_URL), ("REDIS_URL", REDIS_URL), ("CACHE_URL", CACHE_URL)):
        production.check_password(name, url)
    if KAFKA_BOOTSTRAP_SERVERS:  # `migrate`, say, is given no broker
        production.check_kafka()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
