#!/bin/sh
# Runs its arguments (Redis) after writing `requirepass` from the password file into a config
# file of its own, which redis-server reads with `--include`: the password never sits on a
# command line (ps, /proc/PID/cmdline, docker inspect) nor in the environment.
#   REDIS_PASSWORD_FILE     the password (default: compose's secret, /run/secrets/redis_password)
#   REDIS_PASSWORD_INCLUDE  the config file written (default: /run/redis/password.conf)
set -eu
password_file=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
include=${REDIS_PASSWORD_INCLUDE:-/run/redis/password.conf}

# `read` fails on a last line without a newline, yet still fills the variable.
IFS= read -r password <"$password_file" || [ -n "$password" ]
[ -n "$password" ] || { echo "$password_file is empty" >&2; exit 1; }

umask 077
mkdir -p "$(dirname "$include")"
# Both builtins: the password is never an argument of another process.
printf 'requirepass "%s"\n' "$password" >"$include"
# The official image's entrypoint runs Redis as the redis user, which must read the file.
if [ "$(id -u)" = 0 ] && id redis >/dev/null 2>&1; then
  chown redis "$include"
fi
exec "$@"
