"""The mass-change guard: one run may not remove more than a configured share of a feed.

A source fault can look like a mass change: a wrong base URL whose 404s read as deletions, a
revoked key or a wrong domainID that makes a rebuild's extracts come back empty. So the load
(deletions at the source, the order state a rebuild replaces) and the publish (customers who
leave a feed, orders it loses) measure what they are about to remove, inside their transaction,
and stop before the commit when it is more than ``guard.max_drop_share`` of something with at
least ``guard.min_customers_for_guard`` customers. Nothing is committed: the previous feed stays
served. A real mass change is confirmed for one run with the DAG param ``confirm_mass_change`` or
the environment variable ``CUSTOMER_FEED_CONFIRM_MASS_CHANGE=1``.
"""

from __future__ import annotations

import logging
import os

from include.config import GuardSettings

log = logging.getLogger(__name__)

CONFIRM_ENV = "CUSTOMER_FEED_CONFIRM_MASS_CHANGE"
HOW_TO_CONFIRM = (
    "If the change is real, confirm it for one run: trigger customer_feed with the param"
    " confirm_mass_change=true (airflow dags trigger customer_feed -c '{\"confirm_mass_change\": true}'),"
    f" or set {CONFIRM_ENV}=1 for that run (make run CONFIRM=1). Otherwise fix the source (base URL, key,"
    " domainIDs) and the next run goes through by itself."
)


class MassChangeError(RuntimeError):
    """A run would remove more of a feed than the guard allows; nothing was committed."""


def confirmed(explicit: bool = False) -> bool:
    """Whether this run confirms a mass change: the DAG param, or the environment override."""
    return bool(explicit) or os.environ.get(CONFIRM_ENV, "").strip().lower() in ("1", "true", "yes")


def check_drop(
    what: str,
    size: int,
    removals: dict[str, tuple[int, int]],
    settings: GuardSettings,
    confirm: bool = False,
) -> None:
    """Stop when any of `removals` (unit -> (before, removed)) exceeds the allowed share.

    `size` is the customer count that decides whether `what` is large enough to be guarded.
    """
    if size < max(settings.min_customers_for_guard, 1):
        return
    over = {
        unit: (before, removed)
        for unit, (before, removed) in removals.items()
        if before > 0 and removed / before > settings.max_drop_share
    }
    if not over:
        return
    detail = "; ".join(
        f"{removed} of {before} {unit} ({removed / before:.1%}), {before} -> {before - removed}"
        for unit, (before, removed) in over.items()
    )
    if confirmed(confirm):
        log.warning("mass change confirmed: %s would lose %s", what, detail)
        return
    raise MassChangeError(
        f"mass-change guard: {what} would lose {detail} in this run, more than the limit of"
        f" {settings.max_drop_share:.0%} (guard.max_drop_share). Nothing was committed: the previous"
        f" feed is still served. {HOW_TO_CONFIRM}"
    )
