"""The feed configuration: which feeds exist and which source domains feed each of them.

One YAML file (path from ``CUSTOMER_FEED_CONFIG``, default ``config/feeds.yaml``) names every
feed, its converted.in store info and currency, the GiftPro domainIDs and Different Breed
profiles it covers, and the *name* of the environment variable holding its converted.in token.
Secrets never live in the file. A domain that no feed names is neither extracted nor published.
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from include.money import normalize_currency
from include.sources.normalize import BadRecord
from include.sources.registry import SOURCES, source

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "feeds.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreInfo(_Strict):
    name: str
    currency: str
    time_zone: str
    email: str
    country: str
    country_code: str
    description: str = ""


class FeedSources(_Strict):
    giftpro_domains: tuple[str, ...] = ()
    differentbreed_profiles: tuple[str, ...] = ()

    @field_validator("giftpro_domains", "differentbreed_profiles", mode="before")
    @classmethod
    def _as_strings(cls, value):
        return tuple(str(v) for v in (value or ()))


class Feed(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    token_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    currency: str
    store: StoreInfo
    sources: FeedSources

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        try:
            return normalize_currency(value)
        except BadRecord as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _zone_exists(self):
        ZoneInfo(self.store.time_zone)  # raises on an unknown zone
        return self

    @property
    def time_zone(self) -> ZoneInfo:
        return ZoneInfo(self.store.time_zone)

    def token(self) -> str | None:
        """The converted.in token from the environment; None when it is not set."""
        return os.environ.get(self.token_env) or None

    def domains(self, source_name: str) -> tuple[str, ...]:
        """This feed's domains of one source (see include/sources/registry.py)."""
        return getattr(self.sources, source(source_name).domains_field)


class GiftProSettings(_Strict):
    #: The zone GiftPro's naive timestamps are in.
    time_zone: str = "Europe/London"
    #: Order statuses that count as paid (then still subject to `refunded`).
    success_statuses: tuple[str, ...] = ("Complete",)
    #: The name of the "changed" attribute in the list filter.
    changed_field: str = "changed"
    #: Minutes each incremental window reaches back before its start, for late commits.
    overlap_minutes: int = Field(default=10, ge=0)
    #: A first load or rebuild splits a property's history into slices of about this many pages
    #: of 50 orders, each its own extract task (include/history.py).
    history_slice_pages: int = Field(default=400, ge=1)
    #: At most this many GiftPro extract tasks per run, slices included (Airflow maps 1,024 at most).
    max_extract_tasks: int = Field(default=512, ge=1, le=1024)


class DifferentBreedSettings(_Strict):
    #: Where the merchant's list of cust_ids comes from: a file path, or a SQL query on a connection.
    customers_file: str | None = None
    customers_sql: str | None = None
    customers_sql_conn_id: str | None = None
    batch_size: int = Field(default=500, ge=1)
    success_statuses: tuple[str, ...] = ("paid", "complete", "completed")
    overlap_minutes: int = Field(default=10, ge=0)


class FeedConfig(_Strict):
    feeds: tuple[Feed, ...]
    giftpro: GiftProSettings = GiftProSettings()
    differentbreed: DifferentBreedSettings = DifferentBreedSettings()

    @model_validator(mode="after")
    def _unique(self):
        names = [f.name for f in self.feeds]
        if len(set(names)) != len(names):
            raise ValueError(f"feed names must be unique: {names}")
        tokens = [f.token_env for f in self.feeds]
        if len(set(tokens)) != len(tokens):
            raise ValueError("each feed needs its own token_env")
        return self

    def feed(self, name: str) -> Feed:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        raise KeyError(name)

    def domains(self, source_name: str) -> list[str]:
        """Every domain of a source that at least one feed covers, sorted, once each."""
        return sorted({d for f in self.feeds for d in f.domains(source_name)}, key=_natural)

    def feeds_of(self, source_name: str, domain: str) -> list[Feed]:
        return [f for f in self.feeds if domain in f.domains(source_name)]

    def coverage(self) -> list[tuple[str, str, Feed]]:
        """(source, domain, feed) for every domain each feed covers, sources in registry order."""
        return [(name, domain, feed) for feed in self.feeds for name in SOURCES for domain in feed.domains(name)]

    def settings(self, source_name: str):
        """A source's settings section (``giftpro:``, ``differentbreed:``)."""
        return getattr(self, source(source_name).settings_field)

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever a feed's sources or currency change (then every customer is recomputed)."""
        text = repr(sorted((f.name, f.currency, f.store.time_zone, f.sources) for f in self.feeds))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _natural(value: str):
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def load_config(path: str | os.PathLike | None = None) -> FeedConfig:
    path = Path(path or os.environ.get("CUSTOMER_FEED_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"feed configuration not found: {path} (set CUSTOMER_FEED_CONFIG)") from None
    return FeedConfig.model_validate(data)
