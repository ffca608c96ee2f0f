"""The sources the pipeline knows, declared once.

Each source names the feed-configuration field that lists its domains, the settings section it
reads, its Airflow connection, the pipeline step that extracts one spec of it, and how many of
its extract tasks may run at once. The configuration, the planners, the DAG and the aggregation
all read this table; nothing else maps a source to its configuration.

This module imports nothing of the project, so the DAG file may read it at parse time, and the
configuration (which the warehouse and the feed service read too) may use it without reaching
the source clients.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    name: str
    #: The attribute of ``FeedSources`` listing a feed's domains of this source.
    domains_field: str
    #: The attribute of ``FeedConfig`` holding this source's settings.
    settings_field: str
    #: The Airflow connection the client uses.
    conn_id: str
    #: ``module:function`` of the pipeline step that extracts one spec (imported when called).
    extract: str
    #: How many extract tasks of this source may run at once (``max_active_tis_per_dag`` of the
    #: mapped task); None: as many as Airflow schedules. A client that shares a rate limit takes
    #: ``1 / parallel_tasks`` of it.
    parallel_tasks: int | None = None

    def extract_function(self) -> Callable:
        module, _, name = self.extract.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def share_of_rate_limit(self) -> float:
        return 1.0 / max(self.parallel_tasks or 1, 1)


GIFTPRO = Source(
    name="giftpro",
    domains_field="giftpro_domains",
    settings_field="giftpro",
    conn_id="giftpro_default",
    extract="include.pipeline:extract_giftpro",
)
# Different Breed allows 250 requests per 10 seconds for the whole profile: four batches at once,
# each pacing itself to a quarter of it.
DIFFERENTBREED = Source(
    name="differentbreed",
    domains_field="differentbreed_profiles",
    settings_field="differentbreed",
    conn_id="differentbreed_default",
    extract="include.pipeline:extract_differentbreed",
    parallel_tasks=4,
)

SOURCES: dict[str, Source] = {s.name: s for s in (GIFTPRO, DIFFERENTBREED)}


def source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r} (known: {', '.join(SOURCES)})") from None
