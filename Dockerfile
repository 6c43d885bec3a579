# syntax=docker/dockerfile:1
# Sluice worker image: `docker build -t sluice .`, then mount a config at /etc/sluice/sluice.yaml.
# Runtime dependencies only (no `dev`/`local` extras), non-root, health check on /healthz.

# The official python images build CPython from source with --enable-optimizations (PGO) and --with-lto, so the
# interpreter is the fast one; a CPython built without them is markedly slower on Sluice's pure-Python parsing (the
# Makefile prefers Debian's optimised python3.11 for the same reason). Keep an official image, or one built with
# those flags, if you change this.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- builder: wheels for the project and its runtime dependencies -------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# .dockerignore lets in only what the build needs (pyproject.toml, README.md if present, worker/).
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# -- runtime -------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Moves AWS logs (S3/SQS/Kinesis) into OpenSearch" \
      org.opencontainers.image.licenses="Apache-2.0"
# Read-only root filesystem: nothing is written outside /tmp at run time. pip compiles every module's .pyc at
# install time, and PYTHONDONTWRITEBYTECODE stops the interpreter from trying again. `sluice run --processes N`
# keeps its prometheus multiprocess files in a fresh tempfile.mkdtemp() directory, i.e. under $TMPDIR (default
# /tmp), so mount a writable /tmp (compose `tmpfs`, Kubernetes `emptyDir`); no PROMETHEUS_MULTIPROC_DIR to set.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SLUICE_HEALTH_URL=http://127.0.0.1:9090/healthz

# Install from the builder's wheels only (--no-index): exactly the runtime closure of pyproject.toml.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl \
    && groupadd --system --gid 10001 sluice \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin sluice \
    && mkdir -p /etc/sluice

# Numeric, so Kubernetes `runAsNonRoot` can verify it.
USER 10001:10001
EXPOSE 9090

# /healthz is served on telemetry.metrics_port (default 9090); set SLUICE_HEALTH_URL if you change it.
# The slim image has no curl: urlopen raises (exit 1) on a refused connection or a non-2xx answer.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SLUICE_HEALTH_URL'], timeout=3)"]

# SIGTERM starts the graceful drain (worker.shutdown_grace, default 30 s): give the container more than
# that before SIGKILL (`docker stop -t 45`, compose `stop_grace_period`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["sluice"]
CMD ["run", "--config", "/etc/sluice/sluice.yaml"]
