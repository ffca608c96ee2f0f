"""Comparing a served feed with a sandbox's ground truth, field by field (demo and tests)."""

from __future__ import annotations

from include.config import FeedConfig
from include.money import minor_to_major

COMPARED = ("first_name", "last_name", "orders_count", "total_spent", "currency", "phone", "registered_at", "gender")


def expected_feed(truth: dict, config: FeedConfig, feed_name: str) -> dict[str, dict]:
    """The rows converted.in should receive for `feed_name`, keyed by email (ids aside)."""
    currency = config.feed(feed_name).currency
    return {
        email: {
            **{k: row[k] for k in COMPARED if k != "total_spent"},
            "total_spent": minor_to_major(row["total_spent_minor"], currency),
        }
        for (feed, email), row in truth.items()
        if feed == feed_name and row["accepts_marketing"]
    }


def feed_differences(served: list[dict], truth: dict, config: FeedConfig, feed_name: str) -> list[str]:
    """Human-readable differences (no email addresses: positions and field names only)."""
    expected = expected_feed(truth, config, feed_name)
    got = {row["email"]: row for row in served}
    problems = []
    if len(got) != len(served):
        problems.append(f"{feed_name}: {len(served) - len(got)} emails served twice")
    missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
    if missing:
        problems.append(f"{feed_name}: {len(missing)} expected customers not served")
    if extra:
        problems.append(f"{feed_name}: {len(extra)} customers served that should not be")
    for email in sorted(expected.keys() & got.keys()):
        wrong = [k for k in COMPARED if got[email][k] != expected[email][k]]
        if wrong:
            problems.append(f"{feed_name}: customer id {got[email]['id']} differs in {', '.join(wrong)}")
    return problems
