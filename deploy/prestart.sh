#!/usr/bin/env sh
# Run before the API starts in production: migrate, then load the reference data (instruments, rates, the
# academic calendar) into empty tables only. It creates no user: make the first admin once with
# `python -m scripts.create_admin --email <address>`, which prints a set-password link.
set -eu
alembic upgrade head
python -m scripts.reference_data
