#!/bin/sh
# Runs its arguments (`redis-server CONF --sentinel`) after writing CONF, the sentinel's config,
# for the compose sentinel profile. A sentinel rewrites its config file as it learns (the other
# sentinels, the replicas, a failover), so the file is written here, at every start, into a
# writable folder (a tmpfs), never mounted from the repository. The password comes from the
# secret file into the config, never onto a command line.
#
# At a restart after a failover, `redis` may no longer be the primary: the sentinel then starts
# watching the primary that a running peer names, or else the one that `redis` replicates, so a
# restarted sentinel never watches a replica as if it were the primary.
#   REDIS_PASSWORD_FILE            the data nodes' password, also the sentinels' own
#                                  (default: compose's secret, /run/secrets/redis_password)
#   SENTINEL_CONF                  the config written (default: /run/sentinel/sentinel.conf)
#   SENTINEL_ANNOUNCE_HOST         this sentinel's name for the others and for clients (required)
#   SENTINEL_PORT                  (default: 26379)
#   SENTINEL_PEERS                 host:port of every sentinel of the group, space-separated
#   SENTINEL_PRIMARY               host:port of the first primary (default: redis:6379)
#   SENTINEL_SERVICE               the name the primary is watched under (default: chatstream)
#   SENTINEL_QUORUM                sentinels that must agree it is down (default: 2, of 3)
#   SENTINEL_DOWN_AFTER_MS         silence after which it is down (default: 5000)
#   SENTINEL_FAILOVER_TIMEOUT_MS   (default: 60000)
set -eu
password_file=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
conf=${SENTINEL_CONF:-/run/sentinel/sentinel.conf}
announce=${SENTINEL_ANNOUNCE_HOST:?SENTINEL_ANNOUNCE_HOST is not set}
port=${SENTINEL_PORT:-26379}
peers=${SENTINEL_PEERS:-sentinel-1:26379 sentinel-2:26379 sentinel-3:26379}
primary=${SENTINEL_PRIMARY:-redis:6379}
service=${SENTINEL_SERVICE:-chatstream}
quorum=${SENTINEL_QUORUM:-2}

IFS= read -r password <"$password_file" || [ -n "$password" ]
[ -n "$password" ] || { echo "$password_file is empty" >&2; exit 1; }

# redis-cli takes the password from its environment, never from its arguments.
REDISCLI_AUTH=$password
export REDISCLI_AUTH

# What a server answers, one line per reply element; nothing when it cannot be reached.
ask() {
  address=$1
  shift
  timeout 3 redis-cli --raw -h "${address%:*}" -p "${address##*:}" "$@" 2>/dev/null | tr -d '\r'
}
is_address() {
  case ${1##*:} in '' | *[!0-9]*) return 1 ;; esac
  [ -n "${1%:*}" ] && [ "${1%:*}" != "$1" ]
}

found=
for peer in $peers; do
  [ "$peer" = "$announce:$port" ] && continue
  reply=$(ask "$peer" SENTINEL get-master-addr-by-name "$service" | tr '\n' ':')
  if is_address "${reply%:}"; then
    found=${reply%:}
    break
  fi
done
if [ -z "$found" ]; then
  info=$(ask "$primary" INFO replication)
  if [ "$(printf '%s\n' "$info" | sed -n 's/^role://p')" = slave ]; then
    found=$(printf '%s\n' "$info" | sed -n 's/^master_host://p;s/^master_port://p' | tr '\n' ':')
    found=${found%:}
    is_address "$found" || found=
  fi
fi
primary=${found:-$primary}
unset REDISCLI_AUTH
echo "sentinel $announce:$port watches $service at $primary (quorum $quorum)" >&2

myid=$(printf '%s' "$service/$announce:$port" | sha1sum | cut -c1-40)

umask 077
mkdir -p "$(dirname "$conf")"
# printf is a builtin: the password is never an argument of another process. Host names
# throughout (the compose service names), which need Redis 6.2 or later.
{
  printf 'port %s\n' "$port"
  # The same id at every start, derived from the name: the others know a restarted sentinel as
  # the one they knew, so stale ids never raise the majority a failover needs.
  printf 'sentinel myid %s\n' "$myid"
  printf 'sentinel resolve-hostnames yes\n'
  printf 'sentinel announce-hostnames yes\n'
  printf 'sentinel announce-ip "%s"\n' "$announce"
  printf 'sentinel announce-port %s\n' "$port"
  # Clients and the other sentinels authenticate with the same password as the data nodes.
  printf 'requirepass "%s"\n' "$password"
  printf 'sentinel sentinel-pass "%s"\n' "$password"
  printf 'sentinel monitor %s %s %s %s\n' "$service" "${primary%:*}" "${primary##*:}" "$quorum"
  printf 'sentinel auth-pass %s "%s"\n' "$service" "$password"
  printf 'sentinel down-after-milliseconds %s %s\n' "$service" "${SENTINEL_DOWN_AFTER_MS:-5000}"
  printf 'sentinel failover-timeout %s %s\n' "$service" "${SENTINEL_FAILOVER_TIMEOUT_MS:-60000}"
  printf 'sentinel parallel-syncs %s 1\n' "$service"
} >"$conf"
# The official image's entrypoint runs Redis as the redis user, which rewrites the file (into a
# temporary file of the same folder, renamed over it).
if [ "$(id -u)" = 0 ] && id redis >/dev/null 2>&1; then
  chown redis "$(dirname "$conf")" "$conf"
fi
exec "$@"
