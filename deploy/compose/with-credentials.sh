#!/bin/sh
# The entry point of the shopfloor services in docker-compose.yml: `shopfloor ARGS...` with the
# credentials that the init service wrote for this service alone (its broker URL, its InfluxDB
# token) in its environment, where no process list shows them.
set -eu
CREDENTIALS=/run/shopfloor/credentials.env
if [ ! -r "$CREDENTIALS" ]; then
    echo "error: $CREDENTIALS is missing: the init service writes it (docker compose logs init)" >&2
    exit 2
fi
set -a
. "$CREDENTIALS"
set +a
exec shopfloor "$@"
