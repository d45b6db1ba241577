#!/bin/sh
# Creates Temporal's two databases on the compose file's PostgreSQL and brings their
# schemas to the version this admin-tools image ships (docker-compose.yml, temporal-schema).
# Safe to run on every `up`: an existing database is kept, setup-schema skips a schema that
# is already versioned, and update-schema applies only what is missing, which is also how
# an upgrade of the Temporal images gets its schema changes.
# temporal-sql-tool reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD.
set -eu

for db in temporal temporal_visibility; do
    case "$db" in
        temporal) schema=temporal ;;
        *) schema=visibility ;;
    esac
    if temporal-sql-tool --db "$db" create 2>/dev/null; then
        echo "created database $db"
    else
        echo "database $db exists (or cannot be created: the next step says which)"
    fi
    temporal-sql-tool --db "$db" setup-schema -v 0.0
    temporal-sql-tool --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
done
echo "Temporal's schemas are up to date"
