# syntax=docker/dockerfile:1
#
# Wipsie's one image. The API (gunicorn, the default CMD), the Celery worker,
# Celery beat and the migrate job all run it, each with its own command.
#
#   docker build -t wipsie/api .
#   docker run -p 8000:8000 -e SECRET_KEY=... -e DATABASE_URL=... wipsie/api

# --- build: the production dependencies, in a virtualenv --------------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv

# Only the runtime requirements: requirements-dev.txt (moto, pytest, ruff) stays out.
# No compiler and no apt-get are needed: every pin has a manylinux wheel for amd64
# and arm64 that carries its native libraries. pycurl (pulled in by kombu[sqs])
# bundles its own libcurl and OpenSSL in pycurl.libs/, psycopg[binary] its own libpq.
# requirements.lock pins every transitive dependency too (constraints): the
# image gets the exact tree the tests ran with, whenever it is built.
COPY requirements.txt requirements.lock /tmp/
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt -c /tmp/requirements.lock

# --- runtime ----------------------------------------------------------------------
FROM python:3.11-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric USER.
# Its home is the one place it writes besides /tmp: gunicorn's control socket
# ($HOME/.gunicorn/gunicorn.ctl, for `gunicornc`).
RUN groupadd --system --gid 10001 wipsie \
    && useradd --system --uid 10001 --gid 10001 --create-home \
       --home-dir /home/wipsie --shell /usr/sbin/nologin wipsie

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# The code stays owned by root: the app user can read it, not change it.
COPY . /app

# Static files (the admin's CSS and JS) go to STATIC_ROOT=/app/staticfiles, which
# WhiteNoise serves from gunicorn. The settings refuse to load without a SECRET_KEY
# when DEBUG is off, so this RUN line alone gets a throwaway one: it is not an ENV,
# so it is not in the image. Then two smoke checks: pycurl's bundled libcurl loads
# here, and the CA bundle it looks for (from the base image's ca-certificates) is
# present, or the worker's HTTPS calls to SQS would fail certificate checks.
RUN SECRET_KEY=build-only-collectstatic-key-not-a-secret-it-signs-nothing-0123456789 DEBUG=false \
        python manage.py collectstatic --noinput \
    && python -c "import pycurl" \
    && test -s /etc/ssl/certs/ca-certificates.crt \
    && python -m compileall -q wipsie_site sqs_app tasks_app

USER 10001:10001

EXPOSE 8000

# /health/ready asks the database, what this container needs to serve: an SQS blip
# or a stuck worker (both in /health, for people and monitoring) does not make the
# web container unhealthy.
# No curl in the slim image, so Python asks. Host: localhost is in ALLOWED_HOSTS by
# default; keep it there (the Kubernetes probes send the same Host).
# Only the web container serves HTTP: compose disables this check for the others.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:' + os.environ.get('API_PORT', '8000') + '/health/ready', headers={'Host': 'localhost'}), timeout=4)"]

CMD ["gunicorn", "wipsie_site.wsgi", "-c", "gunicorn.conf.py"]
