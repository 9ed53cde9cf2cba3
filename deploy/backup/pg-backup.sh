#!/bin/sh
# Scheduled logical backups of PostgreSQL: every BACKUP_INTERVAL_SECONDS, `pg_dump -Fc` of each database in
# BACKUP_DATABASES into BACKUP_DIR/<database>-<UTC time>.dump (written aside, then renamed, so a dump on disk is
# whole), and dumps older than BACKUP_KEEP_DAYS removed. Connection from libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD.
#   pg-backup.sh         dump now, then on schedule (the compose service)
#   pg-backup.sh once    dump now and exit
#   pg-backup.sh check   succeed when the newest dump is younger than two intervals (the health check)
# Restore one: `pg_restore --no-owner --exit-on-error -d <empty database> FILE` (docs/deploy.md, "Restore").
set -eu
: "${BACKUP_DATABASES:=cedar}"
: "${BACKUP_DIR:=/backups}"
: "${BACKUP_INTERVAL_SECONDS:=86400}"
: "${BACKUP_KEEP_DAYS:=14}"

# Each step returns on failure explicitly: `set -e` does not apply inside a function called from `||`.
dump_all() {
    mkdir -p "$BACKUP_DIR" || return 1
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    for db in $BACKUP_DATABASES; do
        target="$BACKUP_DIR/$db-$stamp.dump"
        if ! pg_dump -Fc --no-owner -d "$db" -f "$target.partial"; then
            rm -f "$target.partial"
            return 1
        fi
        mv "$target.partial" "$target" || return 1
        echo "backup: $target ($(wc -c <"$target") bytes)"
    done
    # Retention only after a whole round succeeded, so failing backups never eat the last good ones. Whole days by
    # modification time; a dump being written is never matched (.partial).
    find "$BACKUP_DIR" -name '*.dump' -type f -mtime +"$BACKUP_KEEP_DAYS" -print -delete
}

check() {
    max_age_minutes=$((BACKUP_INTERVAL_SECONDS * 2 / 60 + 1))
    [ -n "$(find "$BACKUP_DIR" -name '*.dump' -type f -mmin -"$max_age_minutes" 2>/dev/null | head -n 1)" ]
}

case "${1:-loop}" in
    once) dump_all || exit 1 ;;
    check) check ;;
    loop)
        while true; do
            dump_all || echo "backup: FAILED at $(date -u +%FT%TZ)" >&2
            sleep "$BACKUP_INTERVAL_SECONDS"
        done
        ;;
    *) echo "usage: pg-backup.sh [once|check]" >&2; exit 2 ;;
esac
