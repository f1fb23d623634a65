"""Settings for the test suite: the real settings, with test-friendly defaults.

Environment defaults are set before the real settings read them, so a
variable given on the command line (DATABASE_URL for PostgreSQL) still wins.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-that-is-long-enough-for-hs256-signing")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("EMAIL_URL", "memorymail://")
os.environ.setdefault("LOG_FORMAT", "text")
os.environ.setdefault("TASK_RETRY_BASE_SECONDS", "1")

from .settings import *  # noqa: E402, F403
from .settings import DATABASES  # noqa: E402

# Fast password hashing: tests create many users and never need strong hashes.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# One test database per test run (by process id), so that two runs on one
# machine never share or drop each other's. SQLite's is a file, not memory, so
# that the processes the end-to-end tests start (a Celery worker) can open it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"wipsie-test-{os.getpid()}.sqlite3")
    }
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

# Session and CSRF cookies must work over plain HTTP in the browser tests, and
# plain HTTP is not redirected (there is no TLS proxy in front of the tests).
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_SSL_REDIRECT = False
