#!/usr/bin/env bash
# clickhouse-local.sh — a throwaway ClickHouse server for the demo and the tests.
#
#   deploy/clickhouse-local.sh install          install Debian's clickhouse-server if missing (idempotent)
#   deploy/clickhouse-local.sh start DIR        start a server with its data under DIR on free ports;
#                                               prints "tcp=PORT http=PORT pid=PID" and writes DIR/server.env
#   deploy/clickhouse-local.sh stop DIR         stop the server started under DIR
#
# CLICKHOUSE_PORTS="TCP HTTP INTERSERVER" starts on those ports instead of free ones, and
# DIR/config.d/*.xml (written before start) add to the config: a cluster's remote_servers,
# zookeeper and macros (internal/chcluster).
#
# The server listens on 127.0.0.1 only, as user "default" with no password: it is for one machine's
# demo and tests. Production points muckwatch at its own ClickHouse cluster (see README).
set -euo pipefail

server_bin() {
  command -v clickhouse-server 2>/dev/null || { [[ -x /usr/sbin/clickhouse-server ]] && echo /usr/sbin/clickhouse-server; } || true
}

install() {
  if [[ -n "$(server_bin)" ]] && command -v clickhouse-client >/dev/null; then
    return 0
  fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "clickhouse-local: installing Debian's clickhouse-server and clickhouse-client" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clickhouse-server clickhouse-client >&2
  [[ -n "$(server_bin)" ]] || { echo "clickhouse-local: clickhouse-server still missing after apt-get install" >&2; exit 1; }
}

free_port() {
  python3 - <<'PY' 2>/dev/null || (shuf -i 20000-59999 -n 1)
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

port_free() {
  # SO_REUSEADDR as the server binds: connections of the stopped server in TIME_WAIT do not count
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.close()' "$1" 2>/dev/null
}

# start runs start_once, again with new ports when another process took one of the ports it had
# picked between picking and binding (test packages start servers at the same time).
start() {
  local dir=$1 attempt rc
  install
  dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
  for attempt in 1 2 3 4 5; do
    rc=0
    start_once "$dir" || rc=$?
    if [[ $rc -ne 3 ]]; then
      return "$rc"
    fi
    if [[ -n ${CLICKHOUSE_PORTS:-} ]]; then
      echo "clickhouse-local: a port of CLICKHOUSE_PORTS ($CLICKHOUSE_PORTS) is taken" >&2
      exit 3
    fi
    echo "clickhouse-local: a port was taken meanwhile; trying other ports (attempt $attempt)" >&2
    rm -f "$dir/config.xml" "$dir/server.pid"
  done
  echo "clickhouse-local: no free ports after 5 attempts" >&2
  exit 1
}

start_once() {
  local dir=$1
  if [[ -f $dir/server.pid ]] && kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
    cat "$dir/server.env"
    return 0
  fi
  local tcp http inter
  tcp=$(free_port); http=$(free_port); inter=$(free_port)
  # CLICKHOUSE_PORTS="TCP HTTP INTERSERVER" pins the ports: a cluster's servers name each other's
  # ports in their config.d (DIR/config.d/*.xml, merged into config.xml by the server) before
  # they start (internal/chcluster).
  if [[ -n ${CLICKHOUSE_PORTS:-} ]]; then
    read -r tcp http inter <<<"$CLICKHOUSE_PORTS"
    [[ $tcp =~ ^[0-9]+$ && $http =~ ^[0-9]+$ && $inter =~ ^[0-9]+$ ]] || { echo "clickhouse-local: CLICKHOUSE_PORTS must be \"TCP HTTP INTERSERVER\", not \"$CLICKHOUSE_PORTS\"" >&2; exit 1; }
  # A server restarted on the same folder keeps its ports when they are free, so that clients
  # configured with them reconnect (an outage, not a move).
  elif [[ -f $dir/config.xml ]]; then
    local old_tcp old_http old_inter
    old_tcp=$(sed -n 's:.*<tcp_port>\([0-9]*\)</tcp_port>.*:\1:p' "$dir/config.xml")
    old_http=$(sed -n 's:.*<http_port>\([0-9]*\)</http_port>.*:\1:p' "$dir/config.xml")
    old_inter=$(sed -n 's:.*<interserver_http_port>\([0-9]*\)</interserver_http_port>.*:\1:p' "$dir/config.xml")
    if [[ -n $old_tcp && -n $old_http && -n $old_inter ]] && port_free "$old_tcp" && port_free "$old_http" && port_free "$old_inter"; then
      tcp=$old_tcp; http=$old_http; inter=$old_inter
    fi
  fi
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/log" "$dir/format_schemas"
  # Optional, for the tests of encrypted and authenticated connections: CLICKHOUSE_TLS_CERT and
  # CLICKHOUSE_TLS_KEY (PEM files) add a TLS native port; CLICKHOUSE_USER and
  # CLICKHOUSE_PASSWORD add a user with that password.
  local secure="" extra_user="" tls_port=""
  if [[ -n ${CLICKHOUSE_TLS_CERT:-} && -n ${CLICKHOUSE_TLS_KEY:-} ]]; then
    tls_port=$(free_port)
    secure="<tcp_port_secure>$tls_port</tcp_port_secure>
  <openSSL><server><certificateFile>$CLICKHOUSE_TLS_CERT</certificateFile><privateKeyFile>$CLICKHOUSE_TLS_KEY</privateKeyFile><verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile><cacheSessions>true</cacheSessions><disableProtocols>sslv2,sslv3</disableProtocols><preferServerCiphers>true</preferServerCiphers></server></openSSL>"
  fi
  if [[ -n ${CLICKHOUSE_USER:-} && -n ${CLICKHOUSE_PASSWORD:-} ]]; then
    local hash
    hash=$(printf '%s' "$CLICKHOUSE_PASSWORD" | sha256sum | cut -d' ' -f1)
    extra_user="<$CLICKHOUSE_USER><password_sha256_hex>$hash</password_sha256_hex><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></$CLICKHOUSE_USER>"
  fi
  cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log><errorlog>$dir/log/server.err.log</errorlog><size>50M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$tcp</tcp_port>
  <http_port>$http</http_port>
  <interserver_http_port>$inter</interserver_http_port>
  $secure
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
</yandex>
XML
  cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage><load_balancing>random</load_balancing></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default>$extra_user</users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
  # Its own session: a Ctrl-C meant for the demo must not kill the server before the demo has
  # flushed its last batch into it; the demo stops it afterwards.
  setsid "$(server_bin)" --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/server.pid"
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$http/ping" >/dev/null 2>&1; then
      printf 'CLICKHOUSE_TCP=%s\nCLICKHOUSE_HTTP=%s\nCLICKHOUSE_PID=%s\n' "$tcp" "$http" "$pid" >"$dir/server.env"
      if [[ -n $tls_port ]]; then printf 'CLICKHOUSE_TCP_SECURE=%s\n' "$tls_port" >>"$dir/server.env"; fi
      cat "$dir/server.env"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      if grep -q "Address already in use" "$dir/log/server.err.log" 2>/dev/null; then
        rm -f "$dir/log/server.err.log"
        return 3
      fi
      echo "clickhouse-local: server exited during start; see $dir/log/" >&2
      tail -n 20 "$dir/log/server.err.log" "$dir/log/stdout.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  echo "clickhouse-local: server did not answer /ping on port $http within 30 s" >&2
  exit 1
}

stop() {
  local dir=$1
  [[ -f $dir/server.pid ]] || return 0
  local pid; pid=$(cat "$dir/server.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/server.pid"
}

case ${1:-} in
  install) install ;;
  start) start "${2:?usage: $0 start DIR}" ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
