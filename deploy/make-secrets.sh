#!/usr/bin/env bash
# Creates the secret files docker-compose.yml hands to its services (`secrets:`), in DIR
# (default: ./secrets beside docker-compose.yml). A secret that exists is never replaced, so
# running this again is safe; edit a file to set your own value, then run this again to refresh
# the two files derived from the passwords (RabbitMQ's user, redis_exporter's password map).
#
#   deploy/make-secrets.sh [DIR]
#
# Containers read the files as their own users (chatstream 10001, rabbitmq, grafana 472), so
# the files are world-readable and the directory (0700) is what keeps other host users out.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-secrets}
mkdir -p "$dir"
chmod 700 "$dir"

# 64 hex digits: no character needs quoting in a URL or a config file.
random() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

create() {
  local name=$1 value=$2
  [[ -e $dir/$name ]] && return
  printf '%s\n' "$value" >"$dir/$name"
  echo "created $dir/$name"
}

read_secret() { tr -d '\r\n' <"$dir/$1"; }

create redis_password "$(random)"
create amqp_password "$(random)"
# key=user pairs, comma-separated (AUTH_API_KEYS).
create api_keys "$(random)=admin"
create stream_ticket_secret "$(random)"
create grafana_admin_password "$(random)"
# Empty means unset: JWTs are refused until you put your HS256 secret here, and the model
# server is called without a key until you put one here.
create jwt_secret ""
create llm_api_key ""

# The application user, imported by RabbitMQ at boot: no management tag, and permissions on
# chatstream's own exchanges and queues only (configure to declare them, write to publish and
# bind, read to consume). Rename "chatstream" here too if you set CHATSTREAM_NAMESPACE.
cat >"$dir/rabbitmq_users.json" <<JSON
{
  "users": [{"name": "chatstream", "password": "$(read_secret amqp_password)", "tags": []}],
  "permissions": [
    {"user": "chatstream", "vhost": "/",
     "configure": "^chatstream\\\\.", "write": "^chatstream\\\\.", "read": "^chatstream\\\\."}
  ]
}
JSON
# redis_exporter's --redis.password-file: a JSON map from each Redis address to its password.
cat >"$dir/redis_exporter_passwords.json" <<JSON
{"redis://redis:6379": "$(read_secret redis_password)"}
JSON
chmod 644 "$dir"/*
