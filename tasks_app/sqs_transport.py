"""kombu's SQS transport, as Wipsie's workers need it (settings.CELERY_BROKER_TRANSPORT).

Three changes to the stock channel, each for a reason measured here
(../shared/FACTS.md):

- **Queues by logical name.** kombu's `predefined_queues` are filled from
  sqs_client at connect time (`celery` is Wipsie's own task queue), so a
  worker resolves only Wipsie's queues and never calls the account-wide
  ListQueues, and `-Q notifications` names a family.
- **Held messages keep their visibility.** Queues have a short visibility
  timeout (CELERY_VISIBILITY_TIMEOUT, 30 s), so the message of a worker
  that died comes back within about a minute. While this process holds a
  message (waiting for a pool slot or running), a timer extends it with
  ChangeMessageVisibilityBatch, and renews the claim's lease in the history
  with it (tasks_app.lifecycle).
- **A rejected message is left to SQS**, never deleted and never
  re-published: Wipsie decides its visibility (a retry's backoff, a
  duplicate's wait) before rejecting it (tasks_app.worker.MessageRequest).
- **Deletes are batched.** An acknowledged message (its outcome recorded)
  is deleted with DeleteMessageBatch, ten at a time or after
  `DELETE_BATCH_WINDOW` seconds, instead of one synchronous DeleteMessage per
  task inside the event loop. A worker that dies in that window leaves
  messages whose outcome is recorded: they come back and are deleted as
  duplicates.
- **A failed receive is an empty receive.** kombu's asynchronous receive
  hands `[]` instead of a response to its callback after a timeout or a 5xx,
  and the stock channel then dies with `AttributeError` and never polls
  again ("goes deaf").
- **A consumer that stops polling is noticed.** Each poll touches the
  heartbeat file (tasks_app.heartbeat) and is noted for the consumer list
  every process reads (tasks_app.consumers: /health, `sqs_queues`,
  /metrics); a watchdog thread exits the process when no poll started for
  WIPSIE_WORKER_STALL_SECONDS, so that its supervisor starts a worker that
  consumes, instead of a live one that does not.
"""

import logging
import os
import threading
from functools import cached_property
from time import monotonic

from kombu.transport import SQS, virtual

logger = logging.getLogger(__name__)

# Extend a held message's visibility when less than this share of the
# timeout is left; the timer runs about three times per timeout.
EXTEND_WHEN_LEFT = 0.5
# How long an acknowledged message may wait for others to share its delete call.
DELETE_BATCH_WINDOW = 0.05
HEARTBEAT_EVERY = 1.0  # seconds between touches of the heartbeat file


class Channel(SQS.Channel):
    _visibility_timer = None

    def __init__(self, *args, **kwargs):
        self._wipsie_queue_urls = None
        # receipt handle -> (queue URL, SQS MessageId, monotonic time its visibility ends)
        self._held: dict[str, tuple[str, str, float]] = {}
        # queue URL -> receipt handles acknowledged but not deleted yet
        self._pending_deletes: dict[str, list[str]] = {}
        self._delete_timer = None
        self._last_poll = monotonic()
        self._last_beat = 0.0
        self._watchdog: threading.Event | None = None
        super().__init__(*args, **kwargs)

    @property
    def predefined_queues(self):
        if self._wipsie_queue_urls is None:
            from sqs_app import sqs_client

            self._wipsie_queue_urls = {
                name: {"url": url} for name, url in sqs_client.worker_queue_urls().items()
            }
        return self._wipsie_queue_urls

    @cached_property
    def queue_names_by_url(self) -> dict[str, str]:
        """Queue URL -> logical name, for naming each received message's queue (tasks_app.worker)."""
        return {queue["url"]: name for name, queue in self.predefined_queues.items()}

    def canonical_queue_name(self, queue_name):
        # Logical names are the keys of predefined_queues; no prefix games.
        return queue_name

    def _schedule_queue(self, queue):
        from . import consumers, heartbeat

        now = monotonic()
        self._last_poll = now
        consumers.RECORDER.polled(queue)
        if now - self._last_beat >= HEARTBEAT_EVERY:
            heartbeat.beat()
            self._last_beat = now
        return super()._schedule_queue(queue)

    def basic_consume(self, queue, *args, **kwargs):
        self._start_watchdog()
        if self.hub is not None:  # a worker's consumer, not a one-off connection
            from . import consumers

            consumers.RECORDER.start()
        return super().basic_consume(queue, *args, **kwargs)

    def _start_watchdog(self) -> None:
        from django.conf import settings

        stall = settings.WIPSIE_WORKER_STALL_SECONDS
        if self._watchdog is not None or not stall or self.hub is None:
            return
        self._watchdog = stop = threading.Event()

        def watch():
            while not stop.wait(min(5.0, stall / 4)):
                silent = monotonic() - self._last_poll
                if silent > stall:
                    logger.critical(
                        "The consumer has not polled SQS for %.0f s (limit %s s); exiting so that the "
                        "supervisor starts a worker that does",
                        silent,
                        stall,
                    )
                    logging.shutdown()
                    os._exit(70)  # EX_SOFTWARE: the hub is stuck, a clean shutdown cannot be relied on

        threading.Thread(target=watch, name="wipsie-consumer-watchdog", daemon=True).start()

    def _on_messages_ready(self, queue, qname, messages):
        if not isinstance(messages, dict):
            # kombu's answer to a timed-out or 5xx receive: nothing arrived.
            logger.warning("Receive from %s failed (SQS answered %r); polling again", qname, messages)
            messages = {}
        return super()._on_messages_ready(queue, qname, messages)

    def _message_to_python(self, message, queue_name, q_url):
        self._held[message["ReceiptHandle"]] = (
            q_url,
            message["MessageId"],
            monotonic() + self.visibility_timeout,
        )
        self._start_visibility_timer()
        return super()._message_to_python(message, queue_name, q_url)

    def _prepare_json_payload(self, text):
        # The stock parser recurses: 5,000-deep JSON from another producer
        # raised RecursionError inside kombu and stopped the consumer. The
        # body is read again, safely, from the raw SQS message anyway.
        try:
            return super()._prepare_json_payload(text)
        except (RecursionError, ValueError, TypeError):
            return {}

    def basic_ack(self, delivery_tag, multiple=False):
        self._held.pop(delivery_tag, None)
        try:
            url = self.qos.get(delivery_tag).delivery_info["sqs_queue"]
        except KeyError:
            return super().basic_ack(delivery_tag, multiple=multiple)
        # Free the prefetch slot now; the delete itself joins the next batch.
        virtual.Channel.basic_ack(self, delivery_tag, multiple=multiple)
        pending = self._pending_deletes.setdefault(url, [])
        pending.append(delivery_tag)
        if len(pending) >= 10:
            self._flush_deletes(url)
        elif self._delete_timer is None and self.hub is not None:
            self._delete_timer = self.hub.call_later(DELETE_BATCH_WINDOW, self.flush_deletes)
        elif self.hub is None:
            self.flush_deletes()

    def flush_deletes(self):
        self._delete_timer = None
        for url in list(self._pending_deletes):
            self._flush_deletes(url)

    def _flush_deletes(self, url: str) -> None:
        from sqs_app import sqs_client
        from sqs_app.errors import WipsieError

        handles = self._pending_deletes.pop(url, [])
        for start in range(0, len(handles), 10):
            chunk = handles[start : start + 10]
            try:
                refused = sqs_client.delete_message_batch(url=url, receipt_handles=chunk)
            except WipsieError as exc:
                # Their outcomes are recorded: when they come back they are deleted as duplicates.
                logger.warning("Could not delete %d processed message(s): %s", len(chunk), exc)
                continue
            if refused:
                logger.info("SQS refused to delete %d processed message(s) (stale receipt)", len(refused))

    def basic_reject(self, delivery_tag, requeue=False):
        """Forget the delivery; SQS shows the message again when its visibility ends.

        The stock channel deletes a message rejected without requeue (unless
        the queue has a redrive policy) and re-publishes one rejected with
        requeue: the first loses it, the second would no longer be the
        producer's message.
        """
        self._held.pop(delivery_tag, None)
        self.qos.reject(delivery_tag, requeue=False)

    # --- Visibility --------------------------------------------------------

    def _start_visibility_timer(self):
        if self._visibility_timer is None and self.hub is not None:
            interval = max(1.0, self.visibility_timeout * (1 - EXTEND_WHEN_LEFT) / 2)
            self._visibility_timer = self.hub.call_repeatedly(interval, self.extend_held_messages)

    def extend_held_messages(self):
        """Push back the visibility (and the claim's lease) of messages about to reappear."""
        from sqs_app import sqs_client
        from sqs_app.errors import WipsieError

        from . import lifecycle

        now = monotonic()
        timeout = self.visibility_timeout
        due: dict[str, list[str]] = {}
        for handle, (url, _, visible_until) in list(self._held.items()):
            if visible_until - now < timeout * EXTEND_WHEN_LEFT:
                due.setdefault(url, []).append(handle)
        extended_ids = []
        for url, handles in due.items():
            for start in range(0, len(handles), 10):
                chunk = handles[start : start + 10]
                try:
                    refused = sqs_client.change_visibility_batch(
                        url=url, receipt_handles=chunk, seconds=timeout
                    )
                except WipsieError as exc:
                    logger.warning("Could not extend the visibility of %d message(s): %s", len(chunk), exc)
                    continue
                for handle in chunk:
                    if handle in refused or handle not in self._held:
                        continue
                    held_url, message_id, _ = self._held[handle]
                    self._held[handle] = (held_url, message_id, now + timeout)
                    extended_ids.append(message_id)
        if extended_ids:
            try:
                lifecycle.leases_renew(sqs_message_ids=extended_ids, seconds=timeout)
            except Exception:
                logger.exception("Could not renew the leases of %d message(s)", len(extended_ids))

    def close(self):
        if self._watchdog is not None:
            self._watchdog.set()  # shutting down: polls stop on purpose
        self.flush_deletes()
        if self._delete_timer is not None:
            self._delete_timer.cancel()
            self._delete_timer = None
        if self._visibility_timer is not None:
            self._visibility_timer.cancel()
            self._visibility_timer = None
        super().close()


class Transport(SQS.Transport):
    Channel = Channel
