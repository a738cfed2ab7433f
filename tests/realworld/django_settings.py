"""Django settings of the real-world corpus (tests/realworld/labels.toml): the contrib apps and the
reusable apps whose published migrations are checked, as installed from PyPI (the dev extra).

The database is only used by django-migration-linter's ``sqlmigrate`` calls (benchmarks/realworld.py):
tenantdb's Django source runs every step on its own scratch database.
"""

SECRET_KEY = "tenantdb-realworld"
USE_TZ = True
SITE_ID = 1
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.admin",
    "django.contrib.messages",
    "django.contrib.sites",
    "taggit",
    "axes",
    "django_celery_beat",
    "oauth2_provider",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.mfa",
    "allauth.usersessions",
    "django_migration_linter",
]
MIDDLEWARE = ["allauth.account.middleware.AccountMiddleware"]  # allauth refuses to start without it
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
