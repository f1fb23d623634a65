"""Wipsie's logical queues and the physical SQS queues behind them.

API clients, the admin and the workers speak of logical names (`default`,
`data_polling`, ...); only this module knows how they map to SQS queue names.
"""

from dataclasses import dataclass

from django.conf import settings

# Logical name -> physical suffix, in the order the spec lists them.
_SUFFIXES = {
    "default": "default",
    "data_polling": "data-polling",
    "task_processing": "task-processing",
    "notifications": "notifications",
}

LOGICAL_QUEUES: tuple[str, ...] = tuple(_SUFFIXES)
DLQ_SUFFIX = "-dlq"


@dataclass(frozen=True)
class QueueSpec:
    logical_name: str
    physical_name: str

    @property
    def dlq_name(self) -> str:
        return self.physical_name + DLQ_SUFFIX


def queue_spec(logical_name: str) -> QueueSpec:
    """The physical names for a logical queue. Raises KeyError for an unknown one."""
    return QueueSpec(logical_name, settings.SQS_QUEUE_PREFIX + _SUFFIXES[logical_name])


def all_queue_specs() -> list[QueueSpec]:
    return [queue_spec(name) for name in LOGICAL_QUEUES]


def is_known_queue(name: str) -> bool:
    return name in _SUFFIXES


CELERY_QUEUE = "celery"


def celery_queue_spec() -> QueueSpec:
    """Wipsie's own Celery task queue (beat's scheduled polls): not one of the four, but
    provisioned (with a DLQ) beside them, and shown beside them."""
    return QueueSpec(CELERY_QUEUE, settings.SQS_QUEUE_PREFIX + CELERY_QUEUE)


# Every queue an operator may name: the four, and Wipsie's own task queue.
OPERATOR_QUEUES: tuple[str, ...] = (*LOGICAL_QUEUES, CELERY_QUEUE)


def operator_queue_spec(name: str) -> QueueSpec:
    """The spec of any queue an operator may name: the four, or Celery's. KeyError otherwise."""
    return celery_queue_spec() if name == CELERY_QUEUE else queue_spec(name)
