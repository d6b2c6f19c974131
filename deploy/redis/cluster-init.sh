#!/bin/sh
# Makes the nodes of compose's cluster profile one Redis Cluster, three primaries each with a
# replica (`redis-cli --cluster create`), once they all answer and none has slots yet. Compose
# runs it at every `up`, before the gateways and workers start: once the cluster exists it creates
# nothing and changes nothing, and only waits until every node in the cluster says
# cluster_state:ok, so that the gateways and workers start on a cluster that serves every slot.
#   REDIS_PASSWORD_FILE  the nodes' password (default: compose's secret, /run/secrets/redis_password)
#   CLUSTER_NODES        host:port of every node, space-separated
#                        (default: redis-node-1:6379 ... redis-node-6:6379)
#   CLUSTER_REPLICAS     replicas of each primary (default: 1)
#   CLUSTER_WAIT_S       how long the nodes may take to answer, then to agree (default: 120)
set -eu
password_file=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
nodes=${CLUSTER_NODES:-redis-node-1:6379 redis-node-2:6379 redis-node-3:6379 redis-node-4:6379 redis-node-5:6379 redis-node-6:6379}
replicas=${CLUSTER_REPLICAS:-1}
wait_s=${CLUSTER_WAIT_S:-120}

IFS= read -r password <"$password_file" || [ -n "$password" ]
[ -n "$password" ] || { echo "$password_file is empty" >&2; exit 1; }
# redis-cli takes the password from its environment, never from its arguments.
REDISCLI_AUTH=$password
export REDISCLI_AUTH

# A node's CLUSTER INFO, one field a line; nothing when it cannot be reached within 5 s.
cluster_info() {
  timeout 5 redis-cli -h "${1%:*}" -p "${1##*:}" CLUSTER INFO 2>/dev/null | tr -d '\r' || true
}

field() {
  printf '%s\n' "$2" | sed -n "s/^$1://p"
}

created=''
deadline=$(($(date +%s) + wait_s))
while :; do
  # The nodes that hold the cluster's slots, and those of them that see every slot served.
  members=0 agreeing=0 unreachable='' outside='' disagreeing=''
  for node in $nodes; do
    info=$(cluster_info "$node")
    state=$(field cluster_state "$info")
    if [ -z "$state" ]; then
      # No answer, or not the one expected (a wrong password, a server still loading its data).
      unreachable="$unreachable $node"
    elif [ "$(field cluster_slots_assigned "$info")" = 0 ]; then
      outside="$outside $node"
    else
      members=$((members + 1))
      if [ "$state" = ok ]; then
        agreeing=$((agreeing + 1))
      else
        disagreeing="$disagreeing $node"
      fi
    fi
  done
  if [ "$members" -gt 0 ] && [ "$agreeing" = "$members" ]; then
    break
  fi
  if [ "$members" = 0 ] && [ -z "$unreachable" ] && [ -z "$created" ]; then
    # shellcheck disable=SC2086 # one argument per node
    if ! redis-cli --cluster create $nodes --cluster-replicas "$replicas" --cluster-yes; then
      echo "redis-cli --cluster create failed" >&2
      exit 1
    fi
    created=yes
    continue
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "no cluster serving every slot after ${wait_s}s: ${members} nodes hold slots;" \
      "not ok:${disagreeing:- none}; unreachable:${unreachable:- none};" \
      "without slots:${outside:- none}" >&2
    exit 1
  fi
  sleep 1
done

echo "cluster ok on $members nodes${created:+, created now}"
# A node that answers without slots beside a cluster that has them started empty (a new volume):
# it serves nothing until it is added, which is the operator's call (docs/deploy.md).
for node in $outside; do
  echo "$node is not in the cluster (a new volume?): docs/deploy.md, \"Cluster under compose\"," \
    "says how to add it back" >&2
done
for node in $unreachable; do
  echo "$node does not answer" >&2
done
