#!/bin/sh
# Waits until the Temporal server answers, then creates Exosuit's namespace if it is
# missing (docker-compose.yml, temporal-namespace). The server image, unlike the
# deprecated auto-setup one, creates no namespace of its own.
set -eu
address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"

tries=0
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge "${WAIT_TRIES:-90}" ]; then
        echo "Temporal at $address did not become healthy" >&2
        temporal operator cluster health --address "$address"
        exit 1
    fi
    sleep 2
done

if temporal operator namespace describe --namespace "$namespace" --address "$address" >/dev/null 2>&1; then
    echo "namespace $namespace exists"
else
    temporal operator namespace create --namespace "$namespace" --retention "${NAMESPACE_RETENTION:-30d}" \
        --address "$address"
    echo "created namespace $namespace"
fi
