"""The distributed run's failure report: each failed task's exception, read from its log."""

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
