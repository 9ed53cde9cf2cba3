#!/bin/sh
# The namespace Cedar uses and Cedar's search attributes (core/temporal.py SEARCH_ATTRIBUTES); safe to rerun.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health >/dev/null 2>&1; do sleep 2; done
temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 ||
    temporal operator namespace create --namespace "$ns" --retention 30d
for name in CedarEnrollmentState CedarDunningState CedarReenrollment CedarBillingAttention CedarBillingState; do
    temporal operator search-attribute create --namespace "$ns" --name "$name" --type Keyword 2>/dev/null ||
        echo "search attribute $name exists"
done
