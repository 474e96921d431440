#!/usr/bin/env bash
# One command from a fresh clone to a running service on http://127.0.0.1:8000:
# virtualenv + install, SQLite schema, default model bundle (built if missing), gunicorn.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/venv.sh requirements.txt
mkdir -p instance
if [ -z "${SECRET_KEY:-}" ]; then
  # Local default only: a random key kept in the (git-ignored) instance folder. The app reads
  # the same file when SECRET_KEY is unset (app/config.py), so `flask --app app ...` commands
  # work in a plain shell; containers and ECS have no such file and must set SECRET_KEY.
  [ -s instance/secret_key ] || .venv/bin/python -c "import secrets; print(secrets.token_hex(32))" > instance/secret_key
  SECRET_KEY="$(cat instance/secret_key)"
  export SECRET_KEY
fi
.venv/bin/flask --app app init-db
if [ -f scripts/ensure_model.py ]; then
  .venv/bin/python scripts/ensure_model.py
fi
echo "First login: .venv/bin/flask --app app create-user NAME (in another shell), then log in on http://${BIND:-127.0.0.1:8000}" >&2
exec .venv/bin/gunicorn --config app/gunicorn_conf.py --bind "${BIND:-127.0.0.1:8000}" "app:create_app()"
