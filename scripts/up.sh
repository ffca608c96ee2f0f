#!/usr/bin/env bash
# `make up`: Airflow (api-server with the UI on :8080, scheduler, dag-processor, triggerer) with
# the GiftPro and Different Breed sandboxes, on the embedded SQLite warehouse. The admin password
# is printed by `airflow standalone` and kept in
# $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated.
#
# Its state is its own: Airflow home .airflow/ (the demo uses .airflow-demo/, the e2e run
# data/e2e/), warehouse data/up/warehouse.db and staging data/up/staging. customer_feed starts
# unpaused, so the scheduler runs it every hour from the start.
set -euo pipefail
cd "$(dirname "$0")/.."
export AIRFLOW_HOME=${AIRFLOW_HOME:-$PWD/.airflow}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags AIRFLOW__CORE__PLUGINS_FOLDER=$PWD/plugins AIRFLOW__CORE__LOAD_EXAMPLES=False
export PATH=$PWD/.venv/bin:$PATH
gp_port=${SANDBOX_PORT:-8801}
db_port=${DB_SANDBOX_PORT:-8802}
mkdir -p data/up/logs
.venv/bin/python -m sandbox.giftpro --port "$gp_port" > data/up/logs/giftpro-sandbox.log 2>&1 &
gp=$!
.venv/bin/python -m sandbox.differentbreed --port "$db_port" > data/up/logs/differentbreed-sandbox.log 2>&1 &
db=$!
trap 'kill $gp $db 2>/dev/null || true' EXIT
export AIRFLOW_CONN_GIFTPRO_DEFAULT=${AIRFLOW_CONN_GIFTPRO_DEFAULT:-"{\"conn_type\":\"http\",\"host\":\"http://127.0.0.1:$gp_port\",\"password\":\"gp_sandbox_key\"}"}
export AIRFLOW_CONN_DIFFERENTBREED_DEFAULT=${AIRFLOW_CONN_DIFFERENTBREED_DEFAULT:-"{\"conn_type\":\"http\",\"host\":\"http://127.0.0.1:$db_port/client/api/v1\",\"password\":\"db_sandbox_key\"}"}
export AIRFLOW_CONN_CUSTOMER_FEED_DB=${AIRFLOW_CONN_CUSTOMER_FEED_DB:-"{\"conn_type\":\"sqlite\",\"host\":\"$PWD/data/up/warehouse.db\"}"}
export CUSTOMER_FEED_STAGING_URL=${CUSTOMER_FEED_STAGING_URL:-"file://$PWD/data/up/staging"}
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}
airflow db migrate > /dev/null
# New DAGs start unpaused (above); one this home already knew paused is unpaused here.
airflow dags unpause customer_feed -y > /dev/null 2>&1 || true
echo "GiftPro sandbox on :$gp_port, Different Breed sandbox on :$db_port (logs in data/up/logs); Airflow UI on http://localhost:8080"
airflow standalone
