"""Erasing a person: every record of an email address, from every layer, for good.

Order state and source profiles lose the email's rows; the publish that follows recomputes it
(its feed rows go, block counts move); staged Parquet files are rewritten without its records.
The email's keyed hash (:func:`include.suppression.email_digest`, secret
``CUSTOMER_FEED_ERASURE_KEY``) goes on the suppression list, which every extract and load
consults: a later poll or rebuild that meets the address drops its records (counted as
``suppressed``) instead of bringing the person back. Its stable ids stay reserved under the same
digest, so no other customer ever receives them — and a restore gives them back.

    python -m include.erasure someone@example.com             (make erase EMAIL=someone@example.com)
    python -m include.erasure --restore someone@example.com   (make restore EMAIL=someone@example.com)

Neither prints nor logs the address.
"""

from __future__ import annotations

import argparse
import sys

from include.config import FeedConfig, load_config
from include.sources.normalize import normalize_email
from include.staging import purge_email, staging_root
from include.suppression import ErasureKeyError, email_digest, erasure_key
from include.warehouse import Cursor, Warehouse, url_from_env
from include.warehouse.publish import publish_customers
from include.warehouse.suppression import read_suppression, suppress, unsuppress


def _reservation(digest: str) -> str:
    return "erased:" + digest


def erase(wh: Warehouse, config: FeedConfig, email: str, root: str) -> dict:
    email = normalize_email(email)
    key = erasure_key()  # before anything changes: without it the erasure would not last
    digest = email_digest(email, key)
    with wh.transaction() as cur:
        read_suppression(cur)  # the list must be readable with this key (the same key for everyone)
        suppress(cur, digest, key)
        removed = 0
        for table in ("order_state", "source_customers"):
            cur.execute(f"DELETE FROM {table} WHERE email_norm = ?", (email,))
            removed += max(cur.rowcount, 0)
        cur.execute("INSERT INTO dirty_emails (email_norm) VALUES (?) ON CONFLICT DO NOTHING", (email,))
    publish_customers(wh, config, "erasure", emails=[email])
    with wh.transaction() as cur:
        _reserve_ids(cur, email, _reservation(digest))
        cur.execute("DELETE FROM dirty_emails WHERE email_norm = ?", (email,))
    return {"warehouse_rows": removed, "staged_rows": purge_email(root, email)}


def _reserve_ids(cur: Cursor, email: str, reservation: str) -> None:
    """Each feed's id of the email, kept under the digest (ids are never given to anyone else)."""
    cur.execute("SELECT feed, id FROM customer_ids WHERE email_norm = ?", (email,))
    for feed, id_ in cur.fetchall():
        cur.execute("SELECT 1 FROM customer_ids WHERE feed = ? AND email_norm = ?", (feed, reservation))
        # An id already reserved for this person in this feed (erased before under another id):
        # this one stays reserved too, under a name of its own.
        name = reservation if cur.fetchone() is None else f"{reservation}:{id_}"
        cur.execute("UPDATE customer_ids SET email_norm = ? WHERE feed = ? AND id = ?", (name, feed, id_))


def restore(wh: Warehouse, email: str) -> dict:
    """Take the email off the suppression list and give it back its reserved ids. Its records
    return with the next load that contains them: the next run re-polls its Different Breed
    profile in full; a rebuild brings back its GiftPro history."""
    email = normalize_email(email)
    key = erasure_key()
    digest = email_digest(email, key)
    with wh.transaction() as cur:
        read_suppression(cur)
        lifted = unsuppress(cur, digest)
        cur.execute(
            "UPDATE customer_ids SET email_norm = ? WHERE email_norm = ? AND NOT EXISTS"
            " (SELECT 1 FROM customer_ids c WHERE c.feed = customer_ids.feed AND c.email_norm = ?)",
            (email, _reservation(digest), email),
        )
        ids = max(cur.rowcount, 0)
    return {"suppressions_lifted": lifted, "ids_restored": ids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("email")
    parser.add_argument("--restore", action="store_true", help="lift a previous erasure of this address")
    args = parser.parse_args()
    wh = Warehouse(url_from_env())
    wh.create_schema()  # a warehouse from before the suppression list gets its table
    try:
        if args.restore:
            result = restore(wh, args.email)
            print(
                f"restored: {result['suppressions_lifted']} suppression lifted,"
                f" {result['ids_restored']} ids given back; the next run re-polls the Different Breed profile,"
                " a rebuild reloads the GiftPro history"
            )
            return
        result = erase(wh, load_config(), args.email, staging_root())
    except ErasureKeyError as exc:
        sys.exit(f"error: {exc}")
    # The address itself is not printed: logs outlive erasures.
    print(f"erased: {result['warehouse_rows']} warehouse rows, {result['staged_rows']} staged rows; suppressed")


if __name__ == "__main__":
    main()
