# One image for every shopfloor component; docker-compose.yml picks the component with the
# `shopfloor` subcommand given as the container command, e.g. `docker run IMAGE gateway`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY . .
RUN pip install ".[edge,simulators,gateway,dashboard,analytics]" \
    && useradd --create-home --uid 10001 --user-group shopfloor \
    && mkdir -p /var/lib/shopfloor && chown shopfloor:shopfloor /var/lib/shopfloor

# Relative paths (such as the default plant file examples/plant.yaml) resolve in /app.
USER shopfloor

ENTRYPOINT ["shopfloor"]
CMD ["--help"]
