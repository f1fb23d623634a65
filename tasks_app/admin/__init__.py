"""The console's pages for the workers' records: recurring polls, poll results, beat's schedules.

- `polls`: the "Recurring polls" page, with pause, resume, run now and stop;
- `poll_results`: each poll's result, read only;
- `beat`: django-celery-beat's own admins in the console's style.
"""

from . import beat, poll_results, polls  # noqa: F401  (registers the admins)
