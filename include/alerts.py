"""Alerts: a failed run, and a feed not published within its freshness window.

Where they go is configured by one Airflow connection, ``customer_feed_alerts``:

* type ``http`` — a webhook: a JSON ``POST`` to host (+ ``extra.endpoint``), e.g. a Slack or
  Teams incoming webhook, or your own receiver; a login/password means HTTP Basic;
* type ``smtp`` (or ``email``) — an email through that SMTP server, to ``extra.to`` (a list or a
  comma-separated string), from ``extra.from_email`` (or the connection's login).

No such connection: no alert, and a log line says so once per process. An alert never carries a
customer's email address or a secret: its text is built from ids and counts, and any text that
comes from an exception is masked (email addresses) and scrubbed (the values of secret
environment variables) first.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, datetime

from airflow.sdk import BaseNotifier

from include.monitoring import FRESHNESS_INTERVALS, SCHEDULE_INTERVAL, mask_text

log = logging.getLogger(__name__)
ALERTS_CONN_ID = "customer_feed_alerts"
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|_KEY$|AIRFLOW_CONN_", re.I)
_warned_missing: set[str] = set()


def scrub(text: str, environ=os.environ) -> str:
    """Email addresses masked and the values of secret-looking environment variables (tokens,
    keys, passwords, connection URIs) replaced by ``***``."""
    text = mask_text(str(text))
    for name, value in environ.items():
        if _SECRET_NAME.search(name) and value and len(value) >= 6 and value in text:
            text = text.replace(value, "***")
    return text


def failure_message(context: dict) -> dict:
    """The alert for a failed run or task, from an Airflow callback context."""
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", None) or "customer_feed"
    run_id = getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None)
    task_id = getattr(ti, "task_id", None)
    error = context.get("exception")
    reason = context.get("reason")
    detail = f"{type(error).__name__}: {error}" if error else (reason or "")
    text = f"{dag_id}: run {run_id} failed" + (f" at task {task_id}" if task_id else "")
    if detail:
        text += f" — {scrub(detail)[:500]}"
    return {
        "event": "run_failed",
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": getattr(ti, "map_index", None),
        "try_number": getattr(ti, "try_number", None),
        "reason": scrub(reason)[:200] if reason else None,
        "text": text,
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def freshness_message(stale: dict[str, dict], run_id: str | None = None) -> dict:
    """The alert for feeds not published within :data:`FRESHNESS_INTERVALS` schedule intervals
    (`stale`: feed -> :func:`include.monitoring.freshness`)."""
    ages = ", ".join(f"{feed} {info['intervals']:g} intervals ago" for feed, info in sorted(stale.items()))
    return {
        "event": "feed_not_fresh",
        "dag_id": "customer_feed",
        "run_id": run_id,
        "stale_feeds": sorted(stale),
        "text": (
            f"customer_feed: feeds not published within {FRESHNESS_INTERVALS} schedule intervals"
            f" ({SCHEDULE_INTERVAL} each): last published {ages}"
        ),
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _connection(conn_id: str):
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException's home moved between versions
        if "isn't defined" in str(exc) or "not found" in str(exc).lower():
            if conn_id not in _warned_missing:
                _warned_missing.add(conn_id)
                log.warning("no connection %r: customer_feed alerts are not sent", conn_id)
            return None
        raise


def send_alert(message: dict, conn_id: str = ALERTS_CONN_ID) -> bool:
    """Send `message` where connection `conn_id` says; False when there is no such connection."""
    conn = _connection(conn_id)
    if conn is None:
        return False
    kind = (conn.conn_type or "").lower()
    extra = conn.extra_dejson or {}
    if kind in ("smtp", "email"):
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        to = extra.get("to") or []
        to = [t.strip() for t in to.split(",")] if isinstance(to, str) else list(to)
        if not to:
            raise ValueError(f"connection {conn_id}: set extra.to to the alert recipients")
        with SmtpHook(smtp_conn_id=conn_id) as hook:
            hook.send_email_smtp(
                to=to,
                subject=message["text"][:150],
                html_content=f"<pre>{_html(message['text'])}</pre>",
                from_email=extra.get("from_email") or conn.login,
            )
    else:
        from airflow.providers.http.hooks.http import HttpHook

        HttpHook(method="POST", http_conn_id=conn_id).run(
            endpoint=extra.get("endpoint", ""), json=message, headers={"Content-Type": "application/json"}
        )
    log.info("alert %s sent through connection %s", message["event"], conn_id)
    return True


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class FeedAlertNotifier(BaseNotifier):
    """A failure callback (DAG or task): sends :func:`failure_message` through the
    ``customer_feed_alerts`` connection. Sending must never turn into a second failure."""

    def __init__(self, conn_id: str = ALERTS_CONN_ID):
        super().__init__()
        self.conn_id = conn_id

    def render_template_fields(self, context, jinja_env=None) -> None:
        # Nothing to template; and `airflow dags test` hands DAG callbacks a serialized DAG,
        # which has no template environment to render with.
        return None

    def notify(self, context) -> None:
        try:
            send_alert(failure_message(dict(context)), self.conn_id)
        except Exception:
            log.exception("could not send the customer_feed failure alert through %s", self.conn_id)


def alert_stale_feeds(wh, run_id: str | None = None, now: datetime | None = None, conn_id: str = ALERTS_CONN_ID):
    """Send :func:`freshness_message` when a feed's last publish is older than
    :data:`FRESHNESS_INTERVALS` intervals; returns those feeds. Never raises: a check that
    cannot read or send says so in the log and lets the run go on."""
    from include.monitoring import freshness
    from include.warehouse.run_log import current_feeds

    try:
        now = now or datetime.now(UTC)
        stale = {}
        for feed, *_, published_at, _ in current_feeds(wh):
            info = freshness(published_at, now)
            if info["status"] == "late":
                stale[feed] = info
        if stale:
            log.warning("feeds not published within %s intervals: %s", FRESHNESS_INTERVALS, ", ".join(sorted(stale)))
            send_alert(freshness_message(stale, run_id), conn_id)
        return sorted(stale)
    except Exception:
        log.exception("could not check the feeds' freshness")
        return []
