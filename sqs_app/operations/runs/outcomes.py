"""What every kind of slice shares: an item's outcome, the pace kept across slices, how a slice ended."""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ...models import ItemOutcome, OperatorRun, OperatorRunItem


@dataclass
class SliceOutcome:
    """How a slice ended: continue after `again_in` seconds, or end the run with `status`.

    Neither (the default): nothing more for this delivery to do (the run was
    cancelled, or another delivery took it over).
    """

    again_in: float | None = None
    status: str | None = None
    reason: str = ""


def item_finished(run: OperatorRun, item_pk: int, outcome: str, **fields) -> None:
    """An item's outcome and the run's counters, in one transaction, at most once per item."""
    counter = {ItemOutcome.DONE: "done", ItemOutcome.SKIPPED: "skipped", ItemOutcome.FAILED: "failed"}[
        outcome
    ]
    with transaction.atomic():
        changed = OperatorRunItem.objects.filter(pk=item_pk, outcome__in=ItemOutcome.open()).update(
            outcome=outcome, **fields
        )
        if changed:
            OperatorRun.objects.filter(pk=run.pk).update(
                **{counter: F(counter) + 1}, progressed_at=timezone.now()
            )


def wait_before_first_item(run: OperatorRun) -> float:
    """What is left of the pacing interval since the run's last item (slices together keep the rate)."""
    rate = run.parameters.get("rate")
    if not rate or run.progressed_at is None:
        return 0.0
    return max(0.0, 1.0 / rate - (timezone.now() - run.progressed_at).total_seconds())
