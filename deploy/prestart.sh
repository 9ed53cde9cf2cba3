#!/usr/bin/env sh
# Run once before the API starts in production: migrate, then load the reference data (idempotent).
set -eu
alembic upgrade head
python -m scripts.seed_demo
