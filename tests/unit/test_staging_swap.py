"""Re-running an interval swaps its new file set in only once the set is complete: a crash
between the write and the swap leaves the previous extract readable (on the local disk here; on S3 in
tests/integration/test_staging_swap_s3.py)."""

from __future__ import annotations

import fsspec
import pytest

from include import staging
from include.schema import QUARANTINE_SCHEMA
from include.staging import read_orders, read_tables, write_extract
from tests.unit.test_staging import END, START, orders, quarantine, staged_files


class Crash(RuntimeError):
    pass


def test_a_crash_before_the_swap_leaves_the_previous_extract(staging_root, monkeypatch):
    root = staging_root
    before = write_extract(root, "giftpro", "3521", START, END, orders("a", "b"), quarantine("a"))

    def crash(*args, **kwargs):
        raise Crash("killed between write and swap")

    monkeypatch.setattr(staging, "_swap", crash)
    with pytest.raises(Crash):
        write_extract(root, "giftpro", "3521", START, END, orders("c"), quarantine())
    # The previous extract is whole under its own paths; the new set sits in a temporary sibling.
    assert read_orders([before.orders])["customer_ref"].to_pylist() == ["a", "b"]
    assert read_tables([before.quarantine], QUARANTINE_SCHEMA)["customer_ref"].to_pylist() == ["a"]
    assert any(".tmp-" in f for f in staged_files(root))

    monkeypatch.undo()
    after = write_extract(root, "giftpro", "3521", START, END, orders("c"), quarantine())
    assert after == before
    assert read_orders([after.orders])["customer_ref"].to_pylist() == ["c"]
    # The retry cleans up what the crashed writer left; the interval holds exactly the new set.
    assert [f.rsplit("/", 1)[1] for f in staged_files(root)] == ["orders.parquet", "quarantine.parquet"]


def test_files_the_new_set_no_longer_has_go(staging_root):
    root = staging_root
    first = write_extract(root, "giftpro", "3521", START, END, orders("a"), quarantine(), profiles=None)
    fs, path = fsspec.core.url_to_fs(first.orders.rsplit("/", 1)[0])
    fs.pipe_file(f"{path}/profiles.parquet", b"an old file of another layout")
    write_extract(root, "giftpro", "3521", START, END, orders("b"), quarantine())
    assert [f.rsplit("/", 1)[1] for f in staged_files(root)] == ["orders.parquet", "quarantine.parquet"]
