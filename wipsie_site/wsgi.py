"""WSGI entry point: `gunicorn wipsie_site.wsgi` in production."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wipsie_site.settings")

application = get_wsgi_application()
