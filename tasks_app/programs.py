"""`celery worker` and `celery beat` as Wipsie runs them: every line they write is a log record.

Stock Celery prints its start-up banner (and the worker its "Warm shutdown"
line) straight to stdout, so with LOG_FORMAT=json a worker's or beat's output
was not one JSON object per line. Here the banner is one INFO record (the
same text, as its message) and the shutdown line is not written; the worker
logs its shutdown through the handlers like everything else.

wipsie_site.celery's app makes these the classes that `celery -A wipsie_site
worker` and `... beat` run, so every way of starting them (Kubernetes,
compose, `make run`, a shell) behaves alike. `--quiet` still drops the banner.
"""

import logging

from celery import VERSION_BANNER
from celery.apps.beat import Beat as CeleryBeat
from celery.apps.worker import Worker as CeleryWorker
from celery.apps.worker import install_worker_term_handler

logger = logging.getLogger("celery.banner")


class Worker(CeleryWorker):
    def emit_banner(self):
        logger.info(
            "celery worker %s starting\n%s%s",
            self.hostname,
            self.startup_info(artlines=False),
            self.extra_info() or "",
        )

    def install_platform_tweaks(self, worker):
        super().install_platform_tweaks(worker)
        # The stock SIGTERM handler writes "worker: Warm shutdown (MainProcess)"
        # to file descriptor 1 from inside the signal handler (where logging is
        # not safe). The same handler, silent: Celery's "ready" line and ours
        # (tasks_app.consumers) say the rest through the log handlers.
        install_worker_term_handler(worker, verbose=False)


class Beat(CeleryBeat):
    def __init__(self, *args, quiet: bool = False, **kwargs):
        # Stock beat prints two banners with print(); quiet=True stops both,
        # and the banner is logged instead (below), unless --quiet was given.
        super().__init__(*args, quiet=True, **kwargs)
        self.log_banner = not quiet

    def install_sync_handler(self, service):
        # Called once, after logging is set up and right before the scheduler starts.
        if self.log_banner:
            logger.info("celery beat v%s starting\n%s", VERSION_BANNER, self.startup_info(service))
        super().install_sync_handler(service)
