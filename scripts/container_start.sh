#!/bin/sh
# Container entrypoint: fetch the model bundle when MODEL_URI is s3://, create the tables,
# then exec gunicorn (PID 1; workers and threads from WEB_CONCURRENCY / GUNICORN_THREADS).
# The root filesystem may be read-only: only /tmp and /app/instance are written.
set -eu
cd /app
mkdir -p "${MPLCONFIGDIR:-/tmp/matplotlib}"
if [ -d /app/bundle/mplconfig ]; then
  # matplotlib's font cache, built at image build time (saves seconds at every start)
  cp -R /app/bundle/mplconfig/. "${MPLCONFIGDIR:-/tmp/matplotlib}/"
fi
case "${MODEL_URI:-}" in
  s3://*)
    MODEL_URI="$(python scripts/fetch_model.py "$MODEL_URI" "${MODEL_CACHE_DIR:-/tmp/model}")"
    export MODEL_URI
    ;;
esac
if [ "${INIT_DB:-1}" = "1" ]; then
  flask --app app init-db
fi
if [ -f scripts/ensure_model.py ] && [ -n "${MODEL_URI:-}" ] && [ ! -e "$MODEL_URI" ]; then
  # no baked or fetched bundle: build the small default one (needs a writable MODEL_URI)
  python scripts/ensure_model.py
fi
exec gunicorn --config app/gunicorn_conf.py --bind "${BIND:-0.0.0.0:8000}" "app:create_app()"
