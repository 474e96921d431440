# syntax=docker/dockerfile:1
# The RAS twin service: gunicorn + Flask + PyTorch (CPU) on python:3.11-slim.
# Build:  docker build -t ras-twin .
# Run:    docker run --read-only -p 8000:8000 -e SECRET_KEY=... ras-twin
# Writable paths at run time: /tmp and /app/instance (declared volumes; ECS mounts them).

# ---- build: a virtualenv with the pinned requirements ----------------------------------
FROM python:3.11-slim AS build
# torch comes from the PyTorch CPU index only: on PyPI the same version is the CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}+cpu" \
    && pip install -r /tmp/requirements.txt \
    && python -c "import torch; assert not torch.version.cuda, torch.version.cuda" \
    && pip uninstall --yes pip \
    && rm -rf /opt/venv/lib/python3.11/site-packages/torch/include \
    && find /opt/venv -type d -name tests -path "*/site-packages/*/tests" -prune -exec rm -rf {} +

# ---- model: the default model bundle, built at image build time ------------------------
# Only twin/ and the builders are inputs, so changes to app/ or other scripts do not retrain.
# MODEL_URI may point elsewhere at run time (s3://...: fetched at start, see container_start.sh).
# The default is the service's small default bundle (scripts/train_model.py --small); a CI
# smoke build passes MODEL_BUILDER=scripts/smoke_bundle.py MODEL_BUILD_ARGS="--patients 8".
FROM build AS model
# scripts import twin from the working directory (the image does not pip-install the project)
ENV PYTHONPATH=/app
ARG MODEL_BUILDER=scripts/train_model.py
ARG MODEL_BUILD_ARGS="--small --threads 2"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /app
COPY twin/ twin/
COPY scripts/train_model.py scripts/smoke_bundle.py scripts/
RUN echo "${MODEL_BUILD_ARGS}" | xargs python "${MODEL_BUILDER}" --out /app/bundle/model \
    && MPLCONFIGDIR=/app/bundle/mplconfig python -c "import matplotlib.font_manager"

# ---- code: the service's sources, byte-compiled (the root filesystem is read-only) ----
FROM build AS code
WORKDIR /app
COPY app/ app/
COPY twin/ twin/
COPY scripts/ scripts/
RUN python -m compileall -q app twin scripts

# ---- runtime ---------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    MODEL_URI=/app/bundle/model \
    PYTHONPATH=/app \
    BIND=0.0.0.0:8000 \
    WEB_CONCURRENCY=2 \
    GUNICORN_THREADS=4
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=code /app /app
COPY --from=model /app/bundle /app/bundle
RUN mkdir -p /app/instance && chown 10001:10001 /app/instance && chmod 0700 /app/instance
VOLUME ["/tmp", "/app/instance"]
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["/bin/sh", "/app/scripts/container_start.sh"]
