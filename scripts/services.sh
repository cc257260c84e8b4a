# shellcheck shell=bash
# Shared by scripts/test, scripts/load and scripts/provision (sourced, not run):
# installs (apt-get) and starts the services the sandbox and the tests use,
# on Debian/Ubuntu, with or without systemd (CI machines and containers have none).

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # wait_for <what> <command...>
  local what=$1; shift
  for _ in $(seq 1 50); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "error: $what did not come up" >&2
  exit 1
}

# Redis on 127.0.0.1:6379.
ensure_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    log "starting Redis on 127.0.0.1:6379"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/cacheback.log
    wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping
  fi
}

# PostgreSQL on 127.0.0.1:5432, trusting local TCP logins (the sandbox's and
# the tests' URLs carry no password), with a database `test`.
ensure_postgres() {
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version hba
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! as_root grep -q "^# cacheback" "$hba"; then
    log "trusting local TCP logins to PostgreSQL ($hba)"
    as_root sed -i '1i # cacheback: local TCP logins need no password\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    # A server that apt-get already started must re-read it.
    if pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
  fi
  if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
    log "starting PostgreSQL $version on 127.0.0.1:5432"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root pg_ctlcluster "$version" main start
    wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432
  fi
  # `test` for the sandbox, `cacheback_test` for the database store's tests.
  for db in test cacheback_test; do
    if ! psql -h 127.0.0.1 -U postgres -lqt 2>/dev/null | cut -d'|' -f1 | grep -qw "$db"; then
      log "creating database $db"
      psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
    fi
  done
}

# Debian's headless Chromium and its WebDriver server (chromedriver), for the
# sandbox's browser test (sandbox/tests/browser.rs), which fails without them.
ensure_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver
  fi
}

# The first of <bases...> from which <count> consecutive ports answer no
# Redis: where a run's private servers go (never the machine's Redis).
free_port_base() { # free_port_base <count> <bases...>
  local count=$1 base port taken; shift
  for base in "$@"; do
    taken=""
    for port in $(seq "$base" $((base + count - 1))); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && taken=1
    done
    [ -z "$taken" ] && { echo "$base"; return; }
  done
  echo "error: no $count free consecutive ports from any of $*" >&2
  exit 1
}

# Stops the private servers a run started: by PID, then by port (a server a
# test restarted is not our child), and removes their directory.
stop_private_servers() { # stop_private_servers <pids> <first port> <last port> <dir>
  # shellcheck disable=SC2086
  kill $1 2>/dev/null || true
  # shellcheck disable=SC2086
  wait $1 2>/dev/null || true
  for port in $(seq "$2" "$3"); do
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$4"
}

# A Redis Cluster of three primaries, each with one replica, on six private
# ports of its own (never the machine's Redis), for the tests of the cache on
# a Cluster: started once per run, stopped by PID when the calling script
# exits. Exports CACHEBACK_TEST_REDIS_CLUSTER (the seed nodes' URLs).
start_redis_cluster() {
  command -v redis-server >/dev/null || apt_install redis-server
  local base port dir ports=() pids=()
  base=$(free_port_base 6 7101 17101 27101 37101)
  dir=$(mktemp -d /tmp/cacheback-cluster.XXXXXX)
  for port in $(seq "$base" $((base + 5))); do
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout 2000 \
      --save "" --appendonly no --dir "$dir/$port" --logfile "$dir/$port/log" &
    pids+=($!)
    ports+=("127.0.0.1:$port")
  done
  CLUSTER_PIDS="${pids[*]}"
  CLUSTER_DIR="$dir"
  CLUSTER_BASE="$base"
  for port in $(seq "$base" $((base + 5))); do
    wait_for "Redis Cluster node $port" redis-cli -p "$port" ping
  done
  log "creating a Redis Cluster on ports $base-$((base + 5))"
  redis-cli --cluster create "${ports[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 \
    || { cat "$dir/create.log" >&2; exit 1; }
  for port in $(seq "$base" $((base + 5))); do
    wait_for "Redis Cluster state ok on $port" sh -c "redis-cli -p $port cluster info | grep -q cluster_state:ok"
  done
  local urls=""
  for port in $(seq "$base" $((base + 2))); do urls="${urls:+$urls,}redis://127.0.0.1:$port"; done
  export CACHEBACK_TEST_REDIS_CLUSTER="$urls"
}

stop_redis_cluster() {
  if [ -n "${CLUSTER_PIDS:-}" ]; then
    stop_private_servers "$CLUSTER_PIDS" "$CLUSTER_BASE" $((CLUSTER_BASE + 5)) "$CLUSTER_DIR"
  fi
}

# A Redis Sentinel group on private ports of its own (never the machine's
# Redis): one master, one replica and three sentinels watching them as
# `cacheback`, for the tests of the cache and the Sidekiq queue through
# Sentinel. Started once per run, stopped by PID (and by port: a test's
# `SENTINEL FAILOVER` swaps the roles, not the processes) when the calling
# script exits. Exports CACHEBACK_TEST_REDIS_SENTINEL
# (`cacheback@127.0.0.1:<port>,...`, the form of CACHEBACK_REDIS_SENTINEL).
start_redis_sentinel() {
  command -v redis-server >/dev/null || apt_install redis-server
  local base port dir pids=()
  # Master, replica, three sentinels.
  base=$(free_port_base 5 7201 17201 27201 37201)
  dir=$(mktemp -d /tmp/cacheback-sentinel.XXXXXX)
  log "starting a Redis Sentinel group on ports $base-$((base + 4))"
  for port in "$base" $((base + 1)); do
    mkdir -p "$dir/$port"
    local replica_of=()
    [ "$port" != "$base" ] && replica_of=(--replicaof 127.0.0.1 "$base")
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      --dir "$dir/$port" --logfile "$dir/$port/log" "${replica_of[@]}" &
    pids+=($!)
  done
  wait_for "Sentinel master $base" redis-cli -p "$base" ping
  wait_for "Sentinel replica $((base + 1))" sh -c \
    "redis-cli -p $((base + 1)) info replication | grep -q master_link_status:up"
  local sentinels=""
  for port in $(seq $((base + 2)) $((base + 4))); do
    mkdir -p "$dir/$port"
    # Sentinels rewrite their file: each has its own, in the run's directory.
    cat >"$dir/$port/sentinel.conf" <<CONF
port $port
bind 127.0.0.1
dir $dir/$port
logfile $dir/$port/log
sentinel monitor cacheback 127.0.0.1 $base 2
sentinel down-after-milliseconds cacheback 1000
sentinel failover-timeout cacheback 5000
sentinel parallel-syncs cacheback 1
CONF
    redis-server "$dir/$port/sentinel.conf" --sentinel &
    pids+=($!)
    sentinels="${sentinels:+$sentinels,}127.0.0.1:$port"
  done
  SENTINEL_PIDS="${pids[*]}"
  SENTINEL_DIR="$dir"
  SENTINEL_BASE="$base"
  for port in $(seq $((base + 2)) $((base + 4))); do
    # Each sentinel knows the master, the replica and the two other sentinels.
    wait_for "Sentinel $port" sh -c \
      "redis-cli -p $port sentinel master cacheback | tr -d '\r' | grep -A1 -x num-other-sentinels | tail -1 | grep -qx 2"
    wait_for "Sentinel $port sees the replica" sh -c \
      "redis-cli -p $port sentinel master cacheback | tr -d '\r' | grep -A1 -x num-slaves | tail -1 | grep -qx 1"
  done
  export CACHEBACK_TEST_REDIS_SENTINEL="cacheback@$sentinels"
}

stop_redis_sentinel() {
  if [ -n "${SENTINEL_PIDS:-}" ]; then
    stop_private_servers "$SENTINEL_PIDS" "$SENTINEL_BASE" $((SENTINEL_BASE + 4)) "$SENTINEL_DIR"
  fi
}

# The private servers of a run (a Cluster and a Sentinel group), stopped
# together when the calling script exits however it exits.
stop_private_redis() {
  stop_redis_cluster
  stop_redis_sentinel
}
