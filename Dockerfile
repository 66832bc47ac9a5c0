FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY notifier ./notifier
COPY workers ./workers
COPY config ./config
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --create-home notifier && mkdir -p /app/var && chown notifier /app/var
USER notifier
CMD ["notifier", "--help"]
