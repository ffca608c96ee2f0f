"""Erasing a person: every record of an email address, from every layer.

Order state and source profiles lose the email's rows; the publish that follows recomputes it
(its feed rows go, block counts move); its stable id stays reserved under a digest, so no other
customer ever receives it; staged Parquet files are rewritten without its records. Erase it in
the source systems first: a later full load would otherwise bring it back.

    python -m include.erasure someone@example.com      (make erase EMAIL=someone@example.com)
"""

from __future__ import annotations

import argparse
import hashlib

from include.config import FeedConfig, load_config
from include.sources.normalize import normalize_email
from include.staging import purge_email, staging_root
from include.warehouse import Warehouse, url_from_env
from include.warehouse.publish import publish_customers


def erase(wh: Warehouse, config: FeedConfig, email: str, root: str) -> dict:
    email = normalize_email(email)
    digest = "erased:" + hashlib.sha256(email.encode()).hexdigest()
    with wh.transaction() as cur:
        removed = 0
        for table in ("order_state", "source_customers"):
            cur.execute(f"DELETE FROM {table} WHERE email_norm = ?", (email,))
            removed += max(cur.rowcount, 0)
        cur.execute("INSERT INTO dirty_emails (email_norm) VALUES (?) ON CONFLICT DO NOTHING", (email,))
    publish_customers(wh, config, "erasure")
    with wh.transaction() as cur:
        cur.execute("UPDATE customer_ids SET email_norm = ? WHERE email_norm = ?", (digest, email))
        cur.execute("DELETE FROM dirty_emails WHERE email_norm = ?", (email,))
    return {"warehouse_rows": removed, "staged_rows": purge_email(root, email)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("email")
    args = parser.parse_args()
    result = erase(Warehouse(url_from_env()), load_config(), args.email, staging_root())
    # The address itself is not printed: logs outlive erasures.
    print(f"erased: {result['warehouse_rows']} warehouse rows, {result['staged_rows']} staged rows")


if __name__ == "__main__":
    main()
