"""ASGI entry point, for servers that prefer it; production uses gunicorn + WSGI."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wipsie_site.settings")

application = get_asgi_application()
