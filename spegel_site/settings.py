"""Django settings. Node settings come from registry.config (flags and env vars) only."""

import os
from pathlib import Path

from registry.config import SpegelConfig, database_path

BASE_DIR = Path(__file__).resolve().parent.parent

# The node's settings object; the `registry` command replaces it with the parsed flags.
SPEGEL = SpegelConfig.from_env()

_secret = os.environ.get("DJANGO_SECRET_KEY", "")
if not _secret:
    # A per-process key: sessions do not survive a restart, which is fine for a node-local admin.
    import secrets

    _secret = secrets.token_urlsafe(50)
SECRET_KEY = _secret
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_prometheus",
    "registry",
    "routing",
    "visualize",
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
# The registry port runs its own, minimal chain: no sessions, auth or CSRF on /v2.
REGISTRY_MIDDLEWARE: list[str] = []

ROOT_URLCONF = "spegel_site.urls"
REGISTRY_URLCONF = "spegel_site.urls_registry"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

ASGI_APPLICATION = "spegel_site.asgi.application"
REGISTRY_ASGI_APPLICATION = "spegel_site.asgi.registry_application"
ADMIN_ASGI_APPLICATION = "spegel_site.asgi.admin_application"

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": database_path(SPEGEL),
        "OPTIONS": {"timeout": 1},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "registry.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["stderr"], "level": SPEGEL.log_level.upper()},
    "loggers": {
        "django": {"level": "WARNING"},
        # Our access log has every request; Django would add an ERROR per 503 readiness probe.
        "django.request": {"level": "CRITICAL"},
        # A client that goes away mid-blob is normal (C17), not a server fault.
        "asyncio": {"level": "ERROR"},
        "libp2p": {"level": "ERROR"},
        "uvicorn.access": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
WS_ALLOWED_ORIGINS: list[str] = ["*"]  # narrowed by visualize; see visualize/routing.py
