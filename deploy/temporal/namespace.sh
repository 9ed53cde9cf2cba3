#!/bin/sh
# The namespace Cedar uses; safe to rerun. Cedar's search attributes are added by `python -m workers.search_attributes`.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health >/dev/null 2>&1; do sleep 2; done
temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 ||
    temporal operator namespace create --namespace "$ns" --retention 30d
