# Two stages: the builder turns the sources into a wheel (the SQL migrations travel inside it); the image
# installs the locked runtime dependencies, then that wheel alone, and runs as an unprivileged user.
# Build: docker build -t ordersctl:local .   (docker-compose.yml does this for its ordersctl services)
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY ordersctl ordersctl
COPY sql sql
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The dependencies first, from the lock (exact versions, hashes): this layer changes only with the lock.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock
COPY --from=builder /dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps /tmp/dist/ordersctl-*.whl \
    && rm -rf /tmp/dist \
    && groupadd --system --gid 10001 ordersctl \
    && useradd --system --uid 10001 --gid ordersctl --home-dir /home/ordersctl --create-home ordersctl
WORKDIR /home/ordersctl
# Numeric, so a runtime that insists on a non-root user (runAsNonRoot) can verify it.
USER 10001:10001
CMD ["ordersctl", "--help"]
