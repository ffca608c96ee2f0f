"""The "Customer feeds" page of the Airflow UI, and the run notes of customer_feed.

* A FastAPI app mounted by the api-server at ``/customer-feeds`` with a top-level navigation
  entry (an external view the UI shows in a frame). Per feed: customers, orders, money, the last
  publish (time, run, age against the hourly schedule), a chart of customers over time; the last
  runs' changed and recomputed counts; quarantined records of recent runs by reason, with email
  addresses masked. Everything comes from :func:`include.monitoring.overview`; this module only
  renders it.
* Authenticated like the rest of the UI: Airflow mounts plugin apps without authentication, so
  every request goes through Airflow's own ``get_user`` (the UI's ``_token`` cookie or a
  bearer token) and must be allowed to read the customer_feed DAG. Without a session the page
  redirects to the login page and the JSON answers 401.
* A listener sets each successful customer_feed run's note to the summary the publish task
  left in XCom (a task cannot set its run's note itself in Airflow 3.3).
"""

from __future__ import annotations

import html
import logging
import os
from datetime import UTC, datetime

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

log = logging.getLogger(__name__)
DAG_ID = "customer_feed"
URL_PREFIX = "/customer-feeds"
NOTE_XCOM = ("publish_customers", "run_note")  # dags/customer_feed.py: RUN_NOTE_XCOM
NOTE_MARK = "**Window loaded:**"  # how generated notes start: a person's own note is kept


# -- authentication


async def _authorised_user(request: Request):
    """The Airflow user of this request, allowed to read the customer_feed DAG; raises 401
    (no or expired session) or 403 otherwise."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    user = await get_user(request, None, await bearer_scheme(request))
    if not get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=DAG_ID), user=user):
        raise HTTPException(status_code=403, detail="Forbidden")
    return user


def _login_url(request: Request) -> str:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=str(request.url))


# -- data


_schema_ready: set[str] = set()


def _warehouse():
    from include.warehouse import Warehouse, url_from_env

    if os.environ.get("CUSTOMER_FEED_DB_URL") or os.environ.get("AIRFLOW_CONN_CUSTOMER_FEED_DB"):
        wh = Warehouse(url_from_env())
    else:
        from include.warehouse.airflow_url import url_from_airflow

        wh = Warehouse(url_from_airflow("customer_feed_db"))
    if wh.url not in _schema_ready:
        wh.create_schema()  # a warehouse no run has written yet: empty tables, not an error
        _schema_ready.add(wh.url)
    return wh


def _overview() -> dict:
    from include.monitoring import overview

    wh = _warehouse()
    try:
        return overview(wh)
    finally:
        wh.close()


# -- rendering


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _time(epoch: int | None) -> str:
    return "—" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def _money(value, currency) -> str:
    return "—" if value is None else f"{value:,.2f} {_e(currency)}"


def _chart(points: list[tuple[int, int]], width: int = 320, height: int = 90) -> str:
    """Customers over time as an inline SVG line (no script, no external resource)."""
    if not points:
        return '<span class="muted">no publishes yet</span>'
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y1 = min(xs), max(xs), max(ys) or 1
    pad = 4

    def x(v):
        return pad + (width - 2 * pad) * ((v - x0) / (x1 - x0) if x1 > x0 else 1.0)

    def y(v):
        return height - pad - (height - 2 * pad) * v / y1

    line = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in points)
    dots = "".join(
        f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="2.5"><title>{b:,} customers at {_time(a)}</title></circle>'
        for a, b in points[-50:]
    )
    return (
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="customers over time: {ys[-1]:,} now, {min(ys):,} to {y1:,}">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" class="axis"/>'
        f'<polyline points="{line}"/>{dots}</svg>'
        f'<div class="muted small">{len(points)} publishes, {_time(x0)} → {_time(x1)}; max {y1:,}</div>'
    )


_STYLE = """
:root { color-scheme: light dark; --fg:#1a202c; --muted:#718096; --line:#e2e8f0; --bg:#fff; --card:#f7fafc;
  --ok:#2f855a; --due:#b7791f; --late:#c53030; --accent:#3182ce; }
@media (prefers-color-scheme: dark) { :root { --fg:#e2e8f0; --muted:#a0aec0; --line:#2d3748; --bg:#1a202c;
  --card:#2d3748; } }
body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 16px 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.muted { color: var(--muted); } .small { font-size: 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
  min-width: 340px; }
.card h3 { margin: 0 0 8px; font-size: 16px; }
.figures { display: grid; grid-template-columns: repeat(3, auto); gap: 4px 18px; margin-bottom: 8px; }
.figures b { font-size: 20px; display: block; }
.status { font-weight: 600; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; }
.status.ok { background: var(--ok); } .status.due { background: var(--due); }
.status.late, .status.never { background: var(--late); }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12px/1.35 ui-monospace, monospace; } pre { white-space: pre-wrap; word-break: break-all; margin: 0; }
svg.chart polyline { fill: none; stroke: var(--accent); stroke-width: 2; } svg.chart circle { fill: var(--accent); }
svg.chart .axis { stroke: var(--line); }
details { margin: 4px 0 12px; } summary { cursor: pointer; }
"""


def _feed_card(f: dict, interval_s: int, limit: int) -> str:
    fresh = f["freshness"]
    status = fresh["status"].split()[0]
    return f"""<section class="card" data-feed="{_e(f["feed"])}">
<h3>{_e(f["feed"])} <span class="status {status}" data-field="status">{_e(fresh["status"])}</span></h3>
<div class="figures">
 <div><span class="muted">customers</span><b data-field="customers">{f["customers"]:,}</b></div>
 <div><span class="muted">orders</span><b data-field="orders">{f["orders"]:,}</b></div>
 <div><span class="muted">total spent</span>
  <b data-field="total_spent">{_money(f["total_spent"], f["currency"])}</b></div>
</div>
<div>last published <span data-field="published_at">{_time(f["published_at"])}</span>
 by run <code data-field="run_id">{_e(f["run_id"])}</code></div>
<div>age <span data-field="age">{_age(fresh["age_seconds"])}</span>
 = {_e(fresh["intervals"])} × the {interval_s // 60}-minute schedule (late after {limit})</div>
<h4 class="muted small">customers over time</h4>
{_chart(f["history"])}
</section>"""


_ORIGIN = {"params": "explicit window", "data_interval": "data interval", "run_after": "hour before the trigger"}


def _runs_table(runs: list[dict], feeds: list[str]) -> str:
    if not runs:
        return '<p class="muted">No publish recorded yet.</p>'
    head = "".join(f'<th class="n">{_e(f)} customers</th>' for f in feeds)
    rows = []
    for r in runs:
        window = f"{_time(r['window_start'])} → {_time(r['window_end'])}" if r["window_start"] else "—"
        origin = _ORIGIN.get(r["window_origin"], r["window_origin"])
        cells = "".join(f'<td class="n">{r["feeds"].get(f, {}).get("customers", 0):,}</td>' for f in feeds)
        rows.append(
            f'<tr data-run="{_e(r["run_id"])}"><td>{_time(r["published_at"])}</td><td><code>{_e(r["run_id"])}</code>'
            f"{' <b>rebuild</b>' if r['full_rebuild'] else ''}</td>"
            f'<td class="small">{window}<br><span class="muted">{_e(origin)}</span></td>'
            f'<td class="n" data-field="orders_changed">{r["orders_changed"]:,}</td>'
            f'<td class="n" data-field="recomputed">{r["recomputed"]:,}</td>'
            f'<td class="n" data-field="quarantined">{r["quarantined"]:,}</td>{cells}</tr>'
        )
    return (
        "<table><thead><tr><th>published</th><th>run</th><th>window loaded</th><th class='n'>orders changed</th>"
        f"<th class='n'>customers recomputed</th><th class='n'>quarantined</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _quarantine(sections: list[dict]) -> str:
    if not sections:
        return '<p class="muted">No runs recorded yet.</p>'
    out = []
    for q in sections:
        total = sum(q["reasons"].values())
        reasons = "".join(
            f'<tr><td>{_e(reason)}</td><td class="n">{n:,}</td></tr>' for reason, n in q["reasons"].items()
        )
        records = "".join(
            f"<tr><td>{_e(r['source'])} {_e(r['domain'])}</td><td>{_e(r['order_id'])}</td><td>{_e(r['reason'])}</td>"
            f"<td><pre>{_e(r['raw'])}</pre></td></tr>"
            for r in q["records"]
        )
        notes = "".join(f'<p class="muted small">{_e(n)}</p>' for n in q["notes"])
        body = (
            f"<table><thead><tr><th>reason</th><th class='n'>records</th></tr></thead><tbody>{reasons}</tbody></table>"
            f"<details><summary>{len(q['records'])} records (email addresses masked)</summary><table><thead><tr>"
            f"<th>source</th><th>order</th><th>reason</th><th>record</th></tr></thead><tbody>{records}</tbody>"
            "</table></details>"
            if total
            else '<p class="muted small">nothing quarantined</p>'
        )
        out.append(
            f'<div class="quarantine" data-run="{_e(q["run_id"])}"><b>run <code>{_e(q["run_id"])}</code></b>:'
            f" {total:,} quarantined{notes}{body}</div>"
        )
    return "".join(out)


def render_page(data: dict) -> str:
    feeds = [f["feed"] for f in data["feeds"]]
    cards = "".join(
        _feed_card(f, data["schedule_interval_seconds"], data["freshness_intervals"]) for f in data["feeds"]
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Customer feeds</title>
<style>{_STYLE}</style></head><body>
<h1>Customer feeds</h1>
<p class="muted">From the warehouse the feed service serves, as of {_time(data["generated_at"])}.
 A feed is late when its last publish is older than {data["freshness_intervals"]} schedule intervals.</p>
<div class="cards">{cards or '<p class="muted">No feed published yet: trigger customer_feed.</p>'}</div>
<h2>Last runs</h2>{_runs_table(data["runs"], feeds)}
<h2>Quarantined records of recent runs</h2>{_quarantine(data["quarantine"])}
</body></html>"""


_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2">'
    '<path d="M3 3v18h18"/><path d="M7 15l4-4 3 3 5-6"/></svg>'
)


def create_app() -> FastAPI:
    app = FastAPI(title="Customer feeds", docs_url=None, redoc_url=None, openapi_url=None)
    no_store = {"Cache-Control": "no-store"}

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request):
        try:
            await _authorised_user(request)
        except HTTPException as exc:
            if exc.status_code == 401:
                return RedirectResponse(_login_url(request), status_code=303)
            return HTMLResponse(f"<p>{_e(exc.detail)}</p>", status_code=exc.status_code)
        return HTMLResponse(render_page(_overview()), headers=no_store)

    @app.get("/api/overview")
    async def overview_json(request: Request):
        try:
            await _authorised_user(request)
        except HTTPException as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return JSONResponse(_overview(), headers=no_store)

    @app.get("/icon.svg")
    async def icon():
        return Response(_ICON, media_type="image/svg+xml")

    return app


# -- run notes


def _summary_note(session, run_id: str) -> str | None:
    from airflow.models.xcom import XComModel

    task_id, key = NOTE_XCOM
    row = session.scalars(XComModel.get_many(run_id=run_id, key=key, task_ids=task_id, dag_ids=DAG_ID, limit=1)).first()
    return str(XComModel.deserialize_value(row)) if row is not None else None


def _set_note(dag_run, note: str | None) -> None:
    if not note:
        log.info("run %s left no summary for its note", dag_run.run_id)
        return
    if dag_run.note and not str(dag_run.note).startswith(NOTE_MARK):
        return  # a person's own note stays
    dag_run.note = note
    log.info("note of run %s set from the publish summary", dag_run.run_id)


class RunNoteListener:
    """Sets a successful customer_feed run's note from its publish task's XCom (scheduler, or the
    `airflow dags test` process), unless a person already wrote one."""

    @hookimpl
    def on_dag_run_success(self, dag_run, msg: str):
        if dag_run.dag_id != DAG_ID:
            return
        try:
            from airflow.utils.session import create_session
            from sqlalchemy.orm import object_session

            session = object_session(dag_run)
            if session is not None:
                # The scheduler's run, in the scheduler's session: read and set there, committed
                # with the run's state. (That session must not be committed here — it holds the
                # scheduler's locks — and a second one would wait on the run's row lock.)
                _set_note(dag_run, _summary_note(session, dag_run.run_id))
            else:
                # `airflow dags test` hands over a detached run: a session of our own.
                with create_session() as own:
                    _set_note(own.get(type(dag_run), dag_run.id), _summary_note(own, dag_run.run_id))
        except Exception:
            log.exception("could not set the note of run %s", dag_run.run_id)


class CustomerFeedsPlugin(AirflowPlugin):
    name = "customer_feeds"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Customer feeds"}]
    external_views = [
        {
            "name": "Customer feeds",
            "href": f"{URL_PREFIX}/",
            "icon": f"{URL_PREFIX}/icon.svg",
            "url_route": "customer-feeds",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
    listeners = [RunNoteListener()]
