FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ordersctl ordersctl
COPY sql sql
RUN pip install --no-cache-dir -e .
USER nobody
