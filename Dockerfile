# chatstream: one image for the gateway and the worker; compose picks the command.
# Dependencies sit in their own layer, rebuilt only when uv.lock changes.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir --disable-pip-version-check uv==${UV_VERSION}
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
# The Python client library is a path dependency (the `chatstream` command is built on it):
# installed into the venv itself, not as a link to a source tree the last stage leaves behind.
COPY clients/python ./clients/python
RUN uv sync --frozen --no-dev --no-install-project --no-editable
# chatstream itself, installed as a package: its metadata carries the version that
# `chatstream --version` and /healthz report, and the `chatstream` command comes with it.
COPY shared ./shared
COPY gateway ./gateway
COPY worker ./worker
COPY launcher ./launcher
COPY cli ./cli
# The chat page's client modules: the npm package's source, built into the wheel beside the
# gateway (gateway/routes/static.py finds it there as in a checkout).
COPY clients/js/src ./clients/js/src
RUN uv sync --frozen --no-dev --no-editable

FROM python:${PYTHON_VERSION}-slim-bookworm
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOG_FORMAT=json \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    WORKER_METRICS_HOST=0.0.0.0 \
    WORKER_METRICS_PORT=9100
RUN groupadd --system --gid 10001 chatstream \
    && useradd --system --uid 10001 --gid chatstream --no-create-home --shell /usr/sbin/nologin chatstream
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
USER chatstream
EXPOSE 8080 9090 9100
# SIGTERM starts the drain (gateway) or the job grace period (worker); compose waits for it.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "gateway"]
