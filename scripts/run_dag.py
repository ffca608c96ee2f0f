"""`make run [DATE=...]`: run customer_feed once, for the hour ending at DATE (default: now).

Uses whatever the environment says: AIRFLOW_CONN_GIFTPRO_DEFAULT (a real GiftPro account or the
sandbox), CUSTOMER_FEED_CONFIG, AIRFLOW_CONN_CUSTOMER_FEED_DB, CUSTOMER_FEED_STAGING_URL. The DAG
runs in-process with `airflow dags test`; nothing else needs to be running.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from include.guard import CONFIRM_ENV  # noqa: E402
from scripts.local_stack import PYTHON, ROOT, airflow_env, prepare_airflow  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", help="end of the hour to load, ISO 8601 (UTC if no zone); default now")
    parser.add_argument(
        "--confirm-mass-change",
        action="store_true",
        help="let this run remove more of a feed than the mass-change guard allows (a real mass change)",
    )
    args = parser.parse_args()
    end = datetime.fromisoformat(args.date) if args.date else datetime.now(UTC)
    end = end.replace(tzinfo=end.tzinfo or UTC)
    env = airflow_env()
    if "AIRFLOW_CONN_GIFTPRO_DEFAULT" not in env:
        print("AIRFLOW_CONN_GIFTPRO_DEFAULT is not set: see README, 'Pointing it at a real GiftPro account'.")
        return 2
    if args.confirm_mass_change:
        env[CONFIRM_ENV] = "1"
    prepare_airflow(env)
    # `dags test` runs the hour that ends at the given logical date's hour.
    print(f"running customer_feed for the hour ending {end.replace(minute=0, second=0, microsecond=0).isoformat()}")
    return subprocess.run(
        [str(Path(PYTHON).parent / "airflow"), "dags", "test", "customer_feed", end.isoformat()], env=env, cwd=ROOT
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
