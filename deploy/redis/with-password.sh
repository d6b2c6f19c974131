#!/bin/sh
# Runs its arguments (Redis) after writing `requirepass` from the password file into a config
# file of its own, which redis-server reads with `--include`: the password never sits on a
# command line (ps, /proc/PID/cmdline, docker inspect) nor in the environment.
#   REDIS_PASSWORD_FILE     the password (default: compose's secret, /run/secrets/redis_password)
#   REDIS_PASSWORD_INCLUDE  the config file written (default: /run/redis/password.conf)
#   REDIS_ANNOUNCE_HOST     the name this server gives its primary when it is a replica
#                           (default: redis, the compose service; see sentinel.sh)
# The same password is `masterauth`, which a server uses only as a replica: under the compose
# sentinel profile `redis` is the first primary, and it follows a new one after a failover.
set -eu
password_file=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
include=${REDIS_PASSWORD_INCLUDE:-/run/redis/password.conf}
announce=${REDIS_ANNOUNCE_HOST:-redis}

# `read` fails on a last line without a newline, yet still fills the variable.
IFS= read -r password <"$password_file" || [ -n "$password" ]
[ -n "$password" ] || { echo "$password_file is empty" >&2; exit 1; }

umask 077
mkdir -p "$(dirname "$include")"
# Both builtins: the password is never an argument of another process.
printf 'requirepass "%s"\nmasterauth "%s"\nreplica-announce-ip "%s"\n' \
  "$password" "$password" "$announce" >"$include"
# The official image's entrypoint runs Redis as the redis user, which must read the file.
if [ "$(id -u)" = 0 ] && id redis >/dev/null 2>&1; then
  chown redis "$include"
fi
exec "$@"
