#!/bin/sh
# Creates Temporal's two databases on Cedar's PostgreSQL, or brings their schemas up to the admin-tools image's
# version (what `auto-setup` did at every start, as a job that runs before the server).
set -eu
SCHEMA=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
    dir="$SCHEMA/temporal/versioned"
    [ "$db" = temporal_visibility ] && dir="$SCHEMA/visibility/versioned"
    tool="temporal-sql-tool --plugin $DB --ep $POSTGRES_SEEDS -p $DB_PORT -u $POSTGRES_USER --db $db"
    $tool create-database 2>/dev/null || echo "database $db exists"
    $tool setup-schema -v 0.0 2>/dev/null || echo "schema of $db already set up"
    $tool update-schema -d "$dir"
done
