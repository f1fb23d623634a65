"""The two kinds of task failure, and nothing else.

Every task family raises one of these so that the retry policy lives in one
place (the task base class): a temporary failure is retried with exponential
backoff, a permanent one fails at once and is never retried.
"""


class TaskError(Exception):
    """Base class: a task could not produce its outcome."""


class TemporaryTaskError(TaskError):
    """Worth retrying: a timeout, a refused connection, HTTP 5xx/429, throttling."""


class PermanentTaskError(TaskError):
    """Retrying cannot help: invalid input, HTTP 4xx, a refused destination."""
