"""The feed configuration is checked as a whole when it is loaded: every problem is reported with
its field path, as a ConfigError that the DAG fails on without retrying."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import yaml

from include.config import DEFAULT_CONFIG_PATH, ConfigError, check_tokens, load_config, main
from include.pipeline import resolve_window

BASE = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def _load(tmp_path, change) -> str:
    data = copy.deepcopy(BASE)
    change(data)
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return str(raised.value)


def test_the_shipped_configuration_loads():
    assert [f.name for f in load_config(DEFAULT_CONFIG_PATH).feeds] == ["ampress", "seaview"]


def test_an_unknown_time_zone_names_its_field(tmp_path):
    def change(d):
        d["feeds"][1]["store"]["time_zone"] = "Europe/Lndon"

    assert "feeds[1].store.time_zone: unknown time zone 'Europe/Lndon'" in _load(tmp_path, change)


def test_giftpros_zone_is_checked_too(tmp_path):
    def change(d):
        d["giftpro"]["time_zone"] = "Mars/Olympus"

    assert "giftpro.time_zone: unknown time zone 'Mars/Olympus'" in _load(tmp_path, change)


def test_a_domain_in_two_feeds_of_different_currencies_is_refused(tmp_path):
    def change(d):
        d["feeds"][1]["sources"]["giftpro_domains"].append(3522)

    message = _load(tmp_path, change)
    assert "feeds[1].sources.giftpro_domains: 3522 is also in feed 'ampress' (feeds[0]) in GBP" in message


def test_a_domain_in_two_feeds_of_one_currency_is_allowed(tmp_path):
    data = copy.deepcopy(BASE)
    data["feeds"][1].update(currency="GBP")
    data["feeds"][1]["store"]["currency"] = "GBP"
    data["feeds"][1]["sources"]["giftpro_domains"] = [3521]
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    assert [f.name for f in config.feeds_of("giftpro", "3521")] == ["ampress", "seaview"]


def test_a_store_currency_other_than_the_feeds_is_refused(tmp_path):
    def change(d):
        d["feeds"][0]["store"]["currency"] = "EUR"

    assert "feeds[0].store.currency: EUR differs from the feed currency GBP" in _load(tmp_path, change)


@pytest.mark.parametrize("feeds", [[], None])
def test_no_feeds_is_refused(tmp_path, feeds):
    def change(d):
        d["feeds"] = feeds

    message = _load(tmp_path, change)
    assert "feeds: at least one feed is required" in message or "feeds: Input should be a valid tuple" in message


def test_every_problem_is_reported_at_once(tmp_path):
    def change(d):
        d["feeds"][0]["currency"] = "QQQ"
        d["feeds"][1]["store"]["time_zone"] = "Nowhere/City"
        d["feeds"][1]["colour"] = "blue"

    lines = _load(tmp_path, change).splitlines()[1:]
    assert lines == [
        "feeds[0].currency: unknown currency 'QQQ' (an ISO 4217 code)",
        "feeds[1].store.time_zone: unknown time zone 'Nowhere/City'",
        "feeds[1].colour: Extra inputs are not permitted",
    ]


def test_two_feeds_naming_the_same_token_variable_are_refused(tmp_path):
    def change(d):
        d["feeds"][1]["token_env"] = d["feeds"][0]["token_env"]

    assert "feeds[1].token_env: CONVERTEDIN_TOKEN_AMPRESS is also the token of feed 'ampress'" in _load(
        tmp_path, change
    )


def test_a_missing_or_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    (tmp_path / "broken.yaml").write_text("feeds: [\n")
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "broken.yaml")


def test_two_feeds_with_the_same_token_value_are_refused_without_showing_it():
    config = load_config(DEFAULT_CONFIG_PATH)
    secret = "tok-3f9a-shared-by-mistake"
    env = {"CONVERTEDIN_TOKEN_AMPRESS": secret, "CONVERTEDIN_TOKEN_SEAVIEW": secret}
    with pytest.raises(ConfigError) as raised:
        check_tokens(config, env)
    message = str(raised.value)
    assert "'ampress' and 'seaview'" in message and secret not in message
    assert "CONVERTEDIN_TOKEN_AMPRESS and CONVERTEDIN_TOKEN_SEAVIEW" in message
    tokens = check_tokens(config, {"CONVERTEDIN_TOKEN_AMPRESS": "a", "CONVERTEDIN_TOKEN_SEAVIEW": "b"})
    assert {t: f.name for t, f in tokens.items()} == {"a": "ampress", "b": "seaview"}
    assert check_tokens(config, {"CONVERTEDIN_TOKEN_AMPRESS": "a"}).keys() == {"a"}


def test_the_check_command(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("CONVERTEDIN_TOKEN_AMPRESS", "same-value-1")
    monkeypatch.setenv("CONVERTEDIN_TOKEN_SEAVIEW", "same-value-1")
    assert main([str(DEFAULT_CONFIG_PATH)]) == 2
    err = capsys.readouterr().err
    assert "same token" in err and "same-value-1" not in err
    monkeypatch.setenv("CONVERTEDIN_TOKEN_SEAVIEW", "other")
    assert main([str(DEFAULT_CONFIG_PATH)]) == 0
    assert main([str(tmp_path / "absent.yaml")]) == 2


def test_an_empty_window_is_a_config_error():
    with pytest.raises(ConfigError, match="window is empty"):
        resolve_window({"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, None, None, None)


# -- the DAG side: a ConfigError fails the task without retries


@pytest.fixture(scope="module")
def dag_module():
    path = Path(__file__).resolve().parents[2] / "dags" / "customer_feed.py"
    spec = importlib.util.spec_from_file_location("customer_feed_dag_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_config_errors_skip_the_retries(dag_module):
    from airflow.sdk.exceptions import AirflowFailException

    assert dag_module.customer_feed().default_args["retries"] == 2  # what a ConfigError must not spend
    with pytest.raises(RuntimeError), dag_module._fail_without_retry():
        raise RuntimeError("a transient failure stays retryable")
    with pytest.raises(AirflowFailException), dag_module._fail_without_retry():
        raise ConfigError("x")


def test_a_bad_configuration_fails_the_task_without_retry(dag_module, monkeypatch, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    (tmp_path / "feeds.yaml").write_text("feeds: []\n")
    monkeypatch.setenv("CUSTOMER_FEED_CONFIG", str(tmp_path / "feeds.yaml"))
    with pytest.raises(AirflowFailException, match="at least one feed is required") as raised:
        dag_module._config()
    assert isinstance(raised.value.__cause__, ConfigError)
