"""Splitting a GiftPro property's history into slices by ``dateCreated``.

A property loaded for the first time (or rebuilt) has its whole history to fetch: 2M orders are
40,000 pages of 50. As one task, a failure at page 39,000 restarts at page 1. Instead the planner
asks the source how many pages the history has and where the page quantiles fall (a few dozen
requests, in the plan task, never at parse time: :class:`include.sources.giftpro.GiftProHistory`),
and cuts the history into slices of about ``target_pages`` pages each; every slice is a mapped
task of its own, retried alone, staging its own Parquet part. The load merges every part of a
domain in one transaction and moves the domain's watermark only then.

Two rules keep the slices exact:

* The first slice is open below and the last open above, and consecutive slices share their
  bound: slice ``i`` is ``[b[i-1], b[i])`` in GiftPro's own (naive local) ``dateCreated`` text.
  Any order falls in the slice whose lower bound is the last one not after it, so no order falls
  between two slices whatever the bounds are — even when a daylight-saving change makes two
  bounds' local texts run backwards (then a slice is empty and its neighbours overlap, which the
  load's per-order merge makes harmless). The probes only make the slices even; they cannot
  make them wrong.
* The number of mapped tasks stays under a budget (Airflow maps at most 1,024 per task): when the
  history is too long for ``target_pages`` per slice within the budget, slices grow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class HistoryProbe(Protocol):
    """What the planner asks the source about a domain's history (see GiftProHistory)."""

    def pages(self, domain: str) -> int:
        """How many list pages the domain's history fills (0 when it has no order)."""

    def created_at(self, domain: str, page: int) -> datetime | None:
        """The ``dateCreated`` (aware) of the oldest order on list page ``page`` (1 = newest)."""


@dataclass(frozen=True)
class HistorySlice:
    """Orders created in ``[created_from, created_to)``; None: open on that side."""

    created_from: datetime | None
    created_to: datetime | None


def slice_counts(pages: Mapping[str, int], target_pages: int, budget: int) -> dict[str, int]:
    """Slices per domain: about ``target_pages`` pages each, at least one per domain, and at most
    ``budget`` in all (the slices grow when the budget is short)."""
    if target_pages < 1:
        raise ValueError("target_pages must be at least 1")
    if budget < len(pages):
        raise ValueError(f"a budget of {budget} tasks cannot hold {len(pages)} domains")

    def counts(per_slice: int) -> dict[str, int]:
        return {d: max(1, -(-p // per_slice)) for d, p in pages.items()}

    per_slice = target_pages
    if sum(counts(per_slice).values()) > budget:
        # The smallest slice size that fits: sum(ceil(p / size)) only falls as size grows.
        low, high = target_pages, max(pages.values())
        while low < high:
            middle = (low + high) // 2
            if sum(counts(middle).values()) <= budget:
                high = middle
            else:
                low = middle + 1
        per_slice = low
    return counts(per_slice)


def bounds_to_slices(bounds: list[datetime]) -> list[HistorySlice]:
    """Bounds (any order, repeats allowed) -> slices open at both ends that tile the history."""
    ordered = sorted(set(bounds))
    edges: list[datetime | None] = [None, *ordered, None]
    return [HistorySlice(lo, hi) for lo, hi in zip(edges, edges[1:])]


def plan_slices(
    domains: list[str], probe: HistoryProbe, target_pages: int, budget: int, parallel: int = 8
) -> dict[str, list[HistorySlice]]:
    """Each domain's history slices, from ``probe``: page counts first (to share the budget), then
    the ``dateCreated`` at the page quantiles. Domains are probed ``parallel`` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    if not domains:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(domains)))) as pool:
        pages = dict(zip(domains, pool.map(probe.pages, domains)))
        counts = slice_counts(pages, target_pages, budget)

        def slices_of(domain: str) -> list[HistorySlice]:
            n, total = counts[domain], pages[domain]
            quantile_pages = sorted({round(total * k / n) for k in range(1, n)} - {0})
            bounds = [probe.created_at(domain, page) for page in quantile_pages]
            return bounds_to_slices([b for b in bounds if b is not None])

        return dict(zip(domains, pool.map(slices_of, domains)))
