"""The admin, Wipsie's operators' console (django-unfold), one module per page.

- `messages`: the message history (list, search, filters), with the replay
  action; its trace page (`trace`) and its CSV/JSON export (`export`).
- `send`: the send form per task type, built from sqs_app.schemas
  (`schema_forms`).
- `queues`: live queue depths, and purge behind a confirmation page.
- `dead_letters`: a page per DLQ (peek), with redrive, delete and purge.
- `replay`: replay one message, as sent or edited, from its trace page.
- `runs`: the confirmation and progress pages of bulk actions (OperatorRun).
- `dashboard`: the admin index: depths, recent outcomes, a 24-hour chart.
- `task_results`, `accounts` (users, groups with their queue grants, JWT
  tokens), `events`: the other models, styled alike.
- `navigation`: the sidebar.
- What the pages share: `guards` (the server-side permission checks),
  `pages` (the console's own URLs beside Django's), `links` (links between
  pages: a figure to the messages it counts, a row to its object).

Elsewhere: the audit log (sqs_app.admin_audit), and the recurring polls, poll
results and django-celery-beat's pages (tasks_app.admin).

Every page and action asks sqs_app.permissions on the server, and acts
through sqs_app.services and sqs_app.operations, exactly as the API does.
"""

from . import accounts, events, messages, runs, task_results  # noqa: F401  (registers the admins)
