"""The records that travel between the steps of a run (through XCom), declared once.

Inside the pipeline they are typed, frozen and validated; moments are aware UTC datetimes.
Between Airflow tasks they travel as JSON-able dicts (moments as ISO 8601 strings): ``to_json()``
on the way out, ``from_json()`` on the way in — the DAG file does both and nothing else does.

``Window``         the UTC interval a run covers (and whether it rebuilds)
``ExtractSpec``    what one extract task fetches: a source domain, its bounds, its part
``ExtractStats``   what an extract counted
``ExtractResult``  what one extract staged (the spec, the staged files, the counts)
``LoadResult``     what the load merged into the order state
``PublishResult``  what the publish wrote, per feed
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, field_validator

from include.registry import source


def as_utc(moment: datetime) -> datetime:
    """An aware moment as a plain ``datetime`` in UTC. Airflow hands out pendulum DateTimes,
    whose arithmetic can drop the zone; a plain datetime keeps it."""
    m = moment.astimezone(UTC)
    return datetime(m.year, m.month, m.day, m.hour, m.minute, m.second, m.microsecond, tzinfo=UTC)


#: An aware datetime, kept in UTC (naive ones are refused: a moment without a zone is a bug).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(as_utc)]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (what XCom stores)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any] | Self) -> Self:
        return data if isinstance(data, cls) else cls.model_validate(data)


def to_json(value: Record | list[Record]) -> dict | list[dict]:
    """A record, or a list of them, as XCom stores it."""
    return [v.to_json() for v in value] if isinstance(value, list) else value.to_json()


class Window(Record):
    """The run's UTC window ``[start, end)``; each domain's extract also reaches back to its own
    watermark (see ``ExtractSpec.lower``)."""

    start: UtcDatetime
    end: UtcDatetime
    origin: Literal["params", "data_interval", "run_after"]
    rebuild: bool = False


class ExtractSpec(Record):
    """One extract task: the orders of ``source``/``domain`` changed in ``[lower, upper)``.

    A domain may be split into ``parts`` extracts of the same run (Different Breed batches of
    customers, GiftPro history slices); the load checks that every part of a domain arrived
    before it moves the domain's watermark.
    """

    source: str
    domain: str
    currency: str
    #: None: the domain's whole history (never loaded, or a rebuild).
    lower: UtcDatetime | None
    upper: UtcDatetime
    window: Window
    #: Names this part in the staged file names ("" when the domain is one extract).
    part: str = ""
    part_index: int = 0
    parts: int = 1
    #: Different Breed: the customers this batch polls, and those polled over their whole history.
    cust_ids: tuple[str, ...] = ()
    new_cust_ids: tuple[str, ...] = ()
    #: GiftPro history slice: orders created in [created_from, created_to); None: open that side.
    created_from: UtcDatetime | None = None
    created_to: UtcDatetime | None = None

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        return source(value).name

    def without_customers(self) -> ExtractSpec:
        """The spec without its customer lists (a result needs only their count)."""
        return self.model_copy(update={"cust_ids": (), "new_cust_ids": ()})


class ExtractStats(Record):
    orders: int = 0
    quarantined: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    customers: int = 0
    deleted: int = 0
    #: Customers on the merchant's list that answer 404 but the warehouse does not hold (gone before).
    absent: int = 0
    #: Records of erased people dropped before staging (the suppression list; never stored).
    suppressed: int = 0


class ExtractResult(Record):
    spec: ExtractSpec
    orders_path: str
    quarantine_path: str
    profiles_path: str | None = None
    #: Customers polled (Different Breed).
    customers: int = 0
    #: Customer refs the source has deleted (a 404 for their profile).
    deleted: tuple[str, ...] = ()
    stats: ExtractStats = ExtractStats()

    def flat_json(self) -> dict[str, Any]:
        """The spec's fields and the result's side by side (the run summary of
        include/monitoring.py reads this shape)."""
        data = self.to_json()
        return {**data.pop("spec"), **data}


class LoadResult(Record):
    orders_in: int
    orders_changed: int
    profiles_changed: int
    orders_deleted: int
    quarantined: int
    customers_deleted: int
    #: Records of erased people the load dropped (the suppression list).
    suppressed: int = 0
    staged_rows_purged: int
    seconds: float
    #: A load into an empty order state: the seconds of each bulk step.
    timings: dict[str, float] = {}


class FeedTotals(Record):
    customers: int
    orders: int
    total_spent: float
    currency: str


class PublishResult(Record):
    feeds: dict[str, FeedTotals]
    recomputed_emails: int
    full: bool
    seconds: float
    #: A full publish's steps (read, aggregate, ids, write... in seconds; customers_written rows).
    timings: dict[str, float] = {}
