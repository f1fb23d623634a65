"""The admin in a real browser: headless Chromium against pytest-django's live_server."""
