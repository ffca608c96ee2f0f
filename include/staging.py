"""Staging: every extract as Parquet, one file set per source x domain x data interval.

The staging root is a URL (``CUSTOMER_FEED_STAGING_URL``): ``file:///...`` by default, ``s3://``
(or any fsspec filesystem) when workers run on several machines. Paths are plain strings handed
between tasks through XCom, so no worker assumes another's local disk.

Layout::

    {root}/v{SCHEMA_VERSION}/{source}/domain={domain}/window={start}_{end}/
        orders.parquet
        quarantine.parquet
        profiles.parquet        (sources with customer profiles)

Re-running an interval replaces exactly that interval's directory: the new file set is written to a
temporary sibling (``window=….tmp-…``) and swapped in only once complete, so a crash in between
leaves the previous extract readable.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from include.config import PROJECT_ROOT
from include.schema import ORDER_SCHEMA, PROFILE_SCHEMA, QUARANTINE_SCHEMA, SCHEMA_VERSION

DEFAULT_STAGING_URL = f"file://{PROJECT_ROOT / 'data' / 'staging'}"


def staging_root() -> str:
    return os.environ.get("CUSTOMER_FEED_STAGING_URL") or DEFAULT_STAGING_URL


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def window_dir(root: str, source: str, domain: str, start: datetime, end: datetime) -> str:
    return f"{root.rstrip('/')}/v{SCHEMA_VERSION}/{source}/domain={domain}/window={_stamp(start)}_{_stamp(end)}"


@dataclass(frozen=True)
class StagedFiles:
    orders: str
    quarantine: str
    profiles: str | None = None


def write_extract(
    root: str,
    source: str,
    domain: str,
    start: datetime,
    end: datetime,
    orders: pa.Table,
    quarantine: pa.Table,
    profiles: pa.Table | None = None,
    part: str = "",
) -> StagedFiles:
    """Replace the interval's files with these tables (schemas are checked, not coerced).

    `part` names one of several extracts of the same interval (a batch of customers): each part
    replaces only its own files.
    """
    for table, schema, name in (
        (orders, ORDER_SCHEMA, "orders"),
        (quarantine, QUARANTINE_SCHEMA, "quarantine"),
        (profiles, PROFILE_SCHEMA, "profiles"),
    ):
        if table is not None and not table.schema.equals(schema):
            raise ValueError(f"{name} do not match the {name} schema v{SCHEMA_VERSION}")
    directory = window_dir(root, source, domain, start, end)
    fs, path = fsspec.core.url_to_fs(directory)
    suffix = f"-{part}" if part else ""
    files = StagedFiles(
        orders=f"{directory}/orders{suffix}.parquet",
        quarantine=f"{directory}/quarantine{suffix}.parquet",
        profiles=f"{directory}/profiles{suffix}.parquet" if profiles is not None else None,
    )
    tables = {
        url.rsplit("/", 1)[1]: table
        for table, url in ((orders, files.orders), (quarantine, files.quarantine), (profiles, files.profiles))
        if table is not None
    }
    if part:
        fs.makedirs(path, exist_ok=True)
        for name, table in tables.items():
            _write(fs, f"{directory}/{name}", table)
    else:
        _replace_directory(fs, path, tables)
    return files


def _replace_directory(fs, path: str, tables: dict[str, pa.Table]) -> None:
    """The interval's new file set, written whole to a temporary sibling first and only then
    swapped in, so a task killed before the swap leaves the previous extract as it was."""
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    fs.makedirs(temporary, exist_ok=True)
    for name, table in tables.items():
        fs.pipe_file(f"{temporary}/{name}", _parquet_bytes(table))
    _swap(fs, temporary, path, sorted(tables))


def _swap(fs, temporary: str, path: str, names: list[str]) -> None:
    """Move each new file over its old namesake (a rename locally, a copy on an object store:
    each file is whole, old or new, at every moment), drop files the new set no longer has, and
    remove the temporary directory and any a crashed writer of this interval left behind."""
    fs.makedirs(path, exist_ok=True)
    for name in names:
        _move(fs, f"{temporary}/{name}", f"{path}/{name}")
    fs.invalidate_cache(path)
    for stale in fs.ls(path, detail=False):
        if stale.rstrip("/").rsplit("/", 1)[-1] not in names:
            fs.rm(stale, recursive=True)
    parent = path.rstrip("/").rsplit("/", 1)[0]
    fs.invalidate_cache(parent)
    for leftover in fs.glob(f"{path}.tmp-*"):
        fs.rm(leftover, recursive=True)


def _move(fs, source: str, target: str) -> None:
    if isinstance(fs, LocalFileSystem):
        os.replace(source, target)  # atomic on POSIX, and replaces the old file in one step
    else:
        fs.mv(source, target)


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue().to_pybytes()


def _write(fs, url: str, table: pa.Table) -> None:
    _, final = fsspec.core.url_to_fs(url)
    data = _parquet_bytes(table)
    if isinstance(fs, LocalFileSystem):
        # Under a temporary name, then renamed: a killed task never leaves half a file under
        # the final name.
        fs.pipe_file(final + ".tmp", data)
        os.replace(final + ".tmp", final)
    else:
        # An object store writes whole objects: one PUT, no rename (a copy and a delete there).
        fs.pipe_file(final, data)


def _read(fs, path: str) -> pa.Table:
    # Staged files are small: one GET of the whole object beats the size probes and ranged
    # reads of a seekable file on an object store.
    return pq.read_table(pa.BufferReader(fs.cat_file(path)))


def purge_customers(root: str, source: str, domain: str, customer_refs: list[str]) -> int:
    """Rewrite every staged file of (source, domain) without the records of these customers
    (deleted at the source: their data must not outlive them here). Returns rows removed."""
    if not customer_refs:
        return 0
    refs = pa.array(sorted(set(customer_refs)), pa.string())
    return _purge(
        f"{root.rstrip('/')}/v{SCHEMA_VERSION}/{source}/domain={domain}",
        lambda t: pc.fill_null(pc.is_in(t["customer_ref"], value_set=refs), False),
    )


def purge_email(root: str, email_norm: str) -> int:
    """Rewrite every staged file of every source without the records of this email (erasure):
    orders and profiles by their normalised email, quarantined records by their raw text."""

    def matches(table: pa.Table):
        if "email_norm" in table.column_names:
            return pc.equal(table["email_norm"], email_norm)
        return pc.match_substring(pc.utf8_lower(table["raw"]), email_norm)

    return _purge(f"{root.rstrip('/')}/v{SCHEMA_VERSION}", matches)


def _purge(base_url: str, matches) -> int:
    fs, base = fsspec.core.url_to_fs(base_url)
    removed = 0
    for path in sorted(fs.glob(f"{base}/**/*.parquet")):
        table = _read(fs, path)
        kept = table.filter(pc.invert(pc.fill_null(matches(table), False)))
        if kept.num_rows != table.num_rows:
            removed += table.num_rows - kept.num_rows
            _write(fs, fs.unstrip_protocol(path), kept)
    return removed


def read_table(url: str, schema: pa.Schema) -> pa.Table:
    fs, path = fsspec.core.url_to_fs(url)
    return _read(fs, path).cast(schema)


def read_tables(urls: list[str], schema: pa.Schema) -> pa.Table:
    tables = [read_table(u, schema) for u in urls if u]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_orders(urls: list[str]) -> pa.Table:
    return read_tables(urls, ORDER_SCHEMA)
