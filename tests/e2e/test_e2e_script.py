"""The distributed run's own logic: the failure report (each failed task's exception, read from its
log) and the wait for a backfill longer than one page of the REST API."""

from __future__ import annotations

import json

from scripts import e2e


def test_failed_tasks_are_reported_with_their_exception(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(e2e, "E2E", tmp_path)
    task = tmp_path / "airflow" / "logs" / "dag_id=customer_feed" / "run_id=r1" / "task_id=publish_customers"
    task.mkdir(parents=True)
    failed = {"event": "Task failed with exception", "error_detail": [{"exc_type": "ValueError", "exc_value": "boom"}]}
    (task / "attempt=1.log").write_text(
        "\n".join(
            [
                json.dumps({"event": "starting"}),
                "not json at all",
                '{"event": "Task failed with exception", "error_detail": [',  # a truncated line is skipped
                json.dumps(failed),
            ]
        )
    )
    other = tmp_path / "airflow" / "logs" / "dag_id=customer_feed" / "run_id=r2" / "task_id=load_orders"
    other.mkdir(parents=True)
    (other / "attempt=1.log").write_text(json.dumps({"event": "done"}))

    e2e.report_failures("r1")
    out = capsys.readouterr().out
    assert "task_id=publish_customers/attempt=1.log: ValueError: boom" in out
    assert out.count("ValueError") == 1
    assert "load_orders" not in out
    assert f"task logs in {tmp_path / 'airflow' / 'logs'}" in out


class FakeApi:
    """The REST API's dagRuns list as Airflow answers it: at most `cap` runs a call."""

    def __init__(self, states: list[str], cap: int = 100):
        self.runs = [{"dag_run_id": f"backfill__{n}", "state": s} for n, s in enumerate(states)]
        self.cap, self.calls = cap, []

    def call(self, method: str, path: str) -> dict:
        self.calls.append(path)
        query = dict(part.split("=") for part in path.split("?")[1].split("&"))
        assert query["run_type"] == "backfill"
        offset, limit = int(query["offset"]), min(int(query["limit"]), self.cap)
        return {"dag_runs": self.runs[offset : offset + limit], "total_entries": len(self.runs)}


def test_the_backfill_wait_counts_past_one_page_of_the_api():
    api = FakeApi(["success"] * 250)
    assert e2e.backfill_finished(api, 250) == ["success"] * 250
    assert [c.split("offset=")[1] for c in api.calls] == ["0", "100", "200"]
    # a limit above the server's cap still walks every page
    assert len(e2e.list_runs(FakeApi(["success"] * 250), "run_type=backfill", page_size=500)) == 250


def test_the_backfill_wait_goes_on_until_every_run_exists_and_has_finished():
    assert e2e.backfill_finished(FakeApi(["success"] * 150 + ["running"]), 151) is None
    assert e2e.backfill_finished(FakeApi(["success"] * 150), 151) is None  # not all created yet
    assert e2e.backfill_finished(FakeApi(["success"] * 150 + ["failed"]), 151) == ["success"] * 150 + ["failed"]
