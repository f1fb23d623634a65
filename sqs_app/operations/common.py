"""What the operations share: the queues an operator may name, and progress callbacks."""

from collections.abc import Callable

from .. import errors
from ..queues import OPERATOR_QUEUES

Progress = Callable[[int], None]  # called with how many more items are done


def no_progress(_: int) -> None:
    pass


def operator_queue_require(name: str) -> str:
    """One of the four queues or Wipsie's own task queue, else QUEUE_NOT_FOUND."""
    if name not in OPERATOR_QUEUES:
        raise errors.QueueNotFound(details={"queue_name": name, "available_queues": list(OPERATOR_QUEUES)})
    return name
