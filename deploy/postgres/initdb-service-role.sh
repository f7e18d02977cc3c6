#!/bin/sh
# Run by the TimescaleDB image on the first start only (when the data volume is initialised), as the
# owner POSTGRES_USER: creates the services' role hemma_app (service-role.sql). On a volume that
# already exists, run service-role.sql by hand: deploy/README.md, "Database roles".
set -e
if [ -z "$HEMMA_APP_DB_PASSWORD" ]; then
    echo "HEMMA_APP_DB_PASSWORD is not set: the services' database role cannot be created" >&2
    exit 1
fi
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v app_role=hemma_app -v app_password="$HEMMA_APP_DB_PASSWORD" -f /hemma-postgres/service-role.sql
