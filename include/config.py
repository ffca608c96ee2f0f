"""The feed configuration: which feeds exist and which source domains feed each of them.

One YAML file (path from ``CUSTOMER_FEED_CONFIG``, default ``config/feeds.yaml``) names every
feed, its converted.in store info and currency, the GiftPro domainIDs and Different Breed
profiles it covers, and the *name* of the environment variable holding its converted.in token.
Secrets never live in the file. A domain that no feed names is neither extracted nor published.

Everything is checked when the file is loaded, across feeds too, and every problem is reported
at once with its field path (``feeds[1].store.time_zone: unknown time zone 'Europe/Lndon'``) as
a :class:`ConfigError` — an error no retry can fix, which the DAG turns into a failure without
retries. Token *values* live in the environment of the feed service; :func:`check_tokens`
refuses two feeds whose variables hold the same token, naming the feeds, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from include.money import BadRecord, normalize_currency
from include.registry import SOURCES, source

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "feeds.yaml"


class ConfigError(ValueError):
    """A configuration (or a requested run) that is wrong as it stands: retrying cannot help."""


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _currency(value: str) -> str:
    try:
        return normalize_currency(value)
    except BadRecord:
        raise ValueError(f"unknown currency {value!r} (an ISO 4217 code)") from None


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

    _time_zone = field_validator("time_zone")(classmethod(lambda cls, v: _zone(v)))
    _currency = field_validator("currency")(classmethod(lambda cls, v: _currency(v)))


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

    _currency = field_validator("currency")(classmethod(lambda cls, v: _currency(v)))

    @property
    def time_zone(self) -> ZoneInfo:
        return ZoneInfo(self.store.time_zone)

    def token(self) -> str | None:
        """The converted.in token from the environment; None when it is not set."""
        return os.environ.get(self.token_env) or None

    def domains(self, source_name: str) -> tuple[str, ...]:
        """This feed's domains of one source (see include/registry.py)."""
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

    _time_zone = field_validator("time_zone")(classmethod(lambda cls, v: _zone(v)))


class DifferentBreedSettings(_Strict):
    #: Where the merchant's list of cust_ids comes from: a file path, or a SQL query on a connection.
    customers_file: str | None = None
    customers_sql: str | None = None
    customers_sql_conn_id: str | None = None
    batch_size: int = Field(default=500, ge=1)
    success_statuses: tuple[str, ...] = ("paid", "complete", "completed")
    overlap_minutes: int = Field(default=10, ge=0)


class GuardSettings(_Strict):
    """The mass-change guard (see :mod:`include.guard`)."""

    #: The largest share of a feed's customers or orders, or of a source domain's customers, one
    #: run may remove without an explicit confirmation.
    max_drop_share: float = Field(default=0.1, gt=0, le=1)
    #: Feeds and source domains smaller than this are not guarded (a few changes are a large share).
    min_customers_for_guard: int = Field(default=100, ge=0)


class FeedConfig(_Strict):
    feeds: tuple[Feed, ...] = Field(min_length=1)
    giftpro: GiftProSettings = GiftProSettings()
    differentbreed: DifferentBreedSettings = DifferentBreedSettings()
    guard: GuardSettings = GuardSettings()

    @model_validator(mode="after")
    def _across_feeds(self):
        """Rules between feeds; every broken one is reported, each with its field path."""
        problems = []
        first_name: dict[str, int] = {}
        first_env: dict[str, int] = {}
        owner: dict[tuple[str, str], int] = {}
        for i, feed in enumerate(self.feeds):
            if feed.name in first_name:
                problems.append(f"feeds[{i}].name: {feed.name!r} is also the name of feeds[{first_name[feed.name]}]")
            first_name.setdefault(feed.name, i)
            if feed.token_env in first_env:
                j = first_env[feed.token_env]
                problems.append(
                    f"feeds[{i}].token_env: {feed.token_env} is also the token of feed {self.feeds[j].name!r}"
                    f" (feeds[{j}]); each feed needs its own token"
                )
            first_env.setdefault(feed.token_env, i)
            if feed.store.currency != feed.currency:
                problems.append(
                    f"feeds[{i}].store.currency: {feed.store.currency} differs from the feed currency {feed.currency}"
                )
            for name, entry in SOURCES.items():
                attr = entry.domains_field
                for domain in getattr(feed.sources, attr):
                    j = owner.setdefault((name, domain), i)
                    other = self.feeds[j]
                    if j != i and other.currency != feed.currency:
                        problems.append(
                            f"feeds[{i}].sources.{attr}: {domain} is also in feed {other.name!r} (feeds[{j}]) in"
                            f" {other.currency}; a domain's orders have one currency, so it cannot feed {feed.currency}"
                        )
        if problems:
            raise ValueError("\n".join(problems))
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
    """The feed configuration, fully checked; raises ConfigError listing every problem."""
    path = Path(path or os.environ.get("CUSTOMER_FEED_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"feed configuration not found: {path} (set CUSTOMER_FEED_CONFIG)") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"feed configuration {path}: cannot read it: {exc}") from None
    try:
        return FeedConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"feed configuration {path}:\n" + describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """One line per problem, each starting with its field path (``feeds[1].store.time_zone``)."""
    lines = []
    errors = exc.errors(include_url=False, include_input=False)
    for error in errors:
        if error["type"] == "too_short" and len(errors) > 1:
            continue  # pydantic's echo of feeds whose every item failed: the items say why
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "too_short" and path == "feeds":
            message = "at least one feed is required"
        elif error["type"] == "model_type" and not path:
            message = "the file must be a mapping with a `feeds` list"
        for line in message.splitlines():
            lines.append(f"{path}: {line}" if path else line)
    return "\n".join(lines)


def check_tokens(config: FeedConfig, environ: Mapping[str, str] | None = None) -> dict[str, Feed]:
    """{token: feed} for every feed whose token is set; ConfigError when two feeds share a token
    value (one merchant would be served another's customers). Names feeds, never tokens."""
    environ = os.environ if environ is None else environ
    seen: dict[bytes, Feed] = {}
    for feed in config.feeds:
        token = environ.get(feed.token_env) or None
        if token is None:
            continue
        key = hmac.new(b"customer-feed", token.encode("utf-8", "surrogatepass"), "sha256").digest()
        if key in seen:
            other = seen[key]
            raise ConfigError(
                f"feeds {other.name!r} and {feed.name!r} have the same token ({other.token_env} and"
                f" {feed.token_env} hold the same value): each feed needs its own token"
            )
        seen[key] = feed
    return {environ[f.token_env]: f for f in seen.values()}


def main(argv: list[str] | None = None) -> int:
    """``python -m include.config [path]``: check the configuration and the feed tokens set in
    this environment; prints every problem with its field path (never a token)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        config = load_config(args[0] if args else None)
        tokens = check_tokens(config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    unset = [f.token_env for f in config.feeds if f.token() is None]
    print(
        f"ok: {len(config.feeds)} feeds, {len(tokens)} with a token set"
        + (f"; unset: {', '.join(unset)}" * bool(unset))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
