#!/bin/sh
# Forms the `cluster` profile's Redis Cluster (compose/docker-compose.yml): 3 masters and 3
# replicas from the six nodes in REDIS_CLUSTER_NODES (host:port, space-separated), once. Run by
# the one-shot `redis-cluster-init` service after every node answers PING; exits 0 when the
# cluster is formed (or already was, e.g. after `docker compose stop` / `start`), which is what
# hookline-cluster waits for.
set -eu

nodes=${REDIS_CLUSTER_NODES:-redis-1:6379 redis-2:6379 redis-3:6379 redis-4:6379 redis-5:6379 redis-6:6379}
first=${nodes%% *}

cluster_ok() {
    redis-cli -h "${first%:*}" -p "${first##*:}" cluster info | grep -q '^cluster_state:ok'
}

if cluster_ok; then
    echo "redis cluster already formed"
    exit 0
fi

# `redis-cli --cluster create` needs IP addresses: the nodes would not accept the names in the
# CLUSTER MEET it sends.
addrs=""
for node in $nodes; do
    host=${node%:*}
    ip=$(getent hosts "$host" | awk '{ print $1; exit }')
    if [ -z "$ip" ]; then
        echo "cannot resolve redis cluster node $host" >&2
        exit 1
    fi
    addrs="$addrs $ip:${node##*:}"
done

# shellcheck disable=SC2086 # $addrs is a list of words
redis-cli --cluster create $addrs --cluster-replicas 1 --cluster-yes

tries=0
until cluster_ok; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "redis cluster not ok after 60 s" >&2
        exit 1
    fi
    sleep 1
done
echo "redis cluster formed: 3 masters, 3 replicas"
