#!/usr/bin/env bash
# `make up`: Airflow (api-server with the UI on :8080, scheduler, dag-processor, triggerer) with
# the GiftPro and Different Breed sandboxes, on the embedded SQLite warehouse. The admin password
# is printed by `airflow standalone` and kept in
# $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated.
set -euo pipefail
cd "$(dirname "$0")/.."
gp_port=${SANDBOX_PORT:-8801}
db_port=${DB_SANDBOX_PORT:-8802}
mkdir -p data/logs
.venv/bin/python -m sandbox.giftpro --port "$gp_port" > data/logs/giftpro-sandbox.log 2>&1 &
gp=$!
.venv/bin/python -m sandbox.differentbreed --port "$db_port" > data/logs/differentbreed-sandbox.log 2>&1 &
db=$!
trap 'kill $gp $db 2>/dev/null || true' EXIT
export AIRFLOW_CONN_GIFTPRO_DEFAULT=${AIRFLOW_CONN_GIFTPRO_DEFAULT:-"{\"conn_type\":\"http\",\"host\":\"http://127.0.0.1:$gp_port\",\"password\":\"gp_sandbox_key\"}"}
export AIRFLOW_CONN_DIFFERENTBREED_DEFAULT=${AIRFLOW_CONN_DIFFERENTBREED_DEFAULT:-"{\"conn_type\":\"http\",\"host\":\"http://127.0.0.1:$db_port/client/api/v1\",\"password\":\"db_sandbox_key\"}"}
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}
airflow db migrate > /dev/null
echo "GiftPro sandbox on :$gp_port, Different Breed sandbox on :$db_port (logs in data/logs); Airflow UI on http://localhost:8080"
airflow standalone
