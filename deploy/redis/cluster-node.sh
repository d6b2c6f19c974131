#!/bin/sh
# Runs its arguments (a node's redis-server, for compose's cluster profile) with
# `--cluster-announce-hostname` added: the name clients and the other nodes know the node by.
#
# The cluster bus itself uses IP addresses alone, which each node keeps for its peers in
# nodes.conf. Docker hands a container a new address when it recreates or restarts it, so after
# `docker compose down` and `up` every address kept can be stale: no node reaches another, and the
# cluster stays down for good. So before Redis starts, each address in nodes.conf is set to what
# that node's announced name resolves to now. A peer whose name does not resolve in time (its
# container is not up) keeps its old address; once it is up, it reaches the others, which learn its
# new address from that link and pass it on.
#   REDIS_ANNOUNCE_HOST     this node's name: its compose service (required)
#   CLUSTER_CONFIG_FILE     cluster.conf's nodes.conf (default: /data/nodes.conf)
#   CLUSTER_RESOLVE_WAIT_S  how long the peers' names may take to resolve (default: 20)
set -eu
announce=${REDIS_ANNOUNCE_HOST:?REDIS_ANNOUNCE_HOST is not set}
nodes_conf=${CLUSTER_CONFIG_FILE:-/data/nodes.conf}
wait_s=${CLUSTER_RESOLVE_WAIT_S:-20}

# The first address a name resolves to now; nothing while it resolves to none.
resolve() {
  getent hosts "$1" 2>/dev/null | awk 'NR == 1 { print $1 }' || true
}

# Every name announced in nodes.conf: the item after the address in a node's second field,
# ip:port@cport,hostname[,aux=value...], when the node announced one.
names() {
  awk '$2 ~ /,/ { split($2, item, ","); if (item[2] != "" && item[2] !~ /=/) print item[2] }' \
    "$nodes_conf" | sort -u
}

if [ -s "$nodes_conf" ]; then
  deadline=$(($(date +%s) + wait_s))
  while :; do
    resolved='' missing=''
    for name in $(names); do
      address=$(resolve "$name")
      if [ -n "$address" ]; then
        resolved="$resolved $name=$address"
      else
        missing="$missing $name"
      fi
    done
    if [ -z "$missing" ] || [ "$(date +%s)" -ge "$deadline" ]; then
      break
    fi
    sleep 1
  done
  echo "$announce: peers' addresses set from their names:${resolved:- none}${missing:+; unresolved:$missing}" >&2
  # A file beside nodes.conf, renamed over it: a container stopped halfway leaves the old one.
  fresh="$nodes_conf.fresh"
  awk -v resolved="$resolved" '
    BEGIN {
      count = split(resolved, pairs, " ")
      for (i = 1; i <= count; i++) {
        split(pairs[i], pair, "=")
        address[pair[1]] = pair[2]
      }
    }
    $2 ~ /,/ {
      items = split($2, item, ",")
      at = index(item[1], "@")
      if ((item[2] in address) && at > 0) {
        # ip:port@cport, where ip may hold colons (IPv6): the port follows the last one.
        port = substr(item[1], 1, at - 1)
        sub(/.*:/, "", port)
        field = address[item[2]] ":" port substr(item[1], at)
        for (i = 2; i <= items; i++) field = field "," item[i]
        $2 = field
      }
    }
    { print }
  ' "$nodes_conf" >"$fresh"
  # The official image's entrypoint runs Redis as the redis user, which rewrites the file.
  if [ "$(id -u)" = 0 ] && id redis >/dev/null 2>&1; then
    chown redis "$fresh"
  fi
  mv "$fresh" "$nodes_conf"
fi
exec "$@" --cluster-announce-hostname "$announce"
