#!/usr/bin/env bash
# zookeeper-local.sh — Debian's ZooKeeper, for the test of muckwatch on a ClickHouse cluster
# (Replicated tables and ON CLUSTER DDL need a coordination service).
#
#   deploy/zookeeper-local.sh install      install Debian's zookeeper if missing (idempotent)
#   deploy/zookeeper-local.sh classpath    print the Java class path of the installed ZooKeeper
#
# Only the package is installed: its system service is not used. The test (internal/chcluster)
# starts its own ZooKeeper with a config and data folder of its own on a free port, as
#   java -cp "$(deploy/zookeeper-local.sh classpath)" org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg
set -euo pipefail

# Debian's libzookeeper-java: the server jar, whose manifest names its dependencies in
# /usr/share/java (netty, jackson, slf4j, …), so it alone is the class path.
zk_jar=/usr/share/java/zookeeper.jar

have() {
  command -v java >/dev/null && [[ -f $zk_jar ]]
}

install() {
  if have; then
    return 0
  fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "zookeeper-local: installing Debian's zookeeper" >&2
  $sudo apt-get update -qq >&2
  # The package's postinst may try to start the system service; the tests never use it, and in
  # a container without an init system that attempt fails harmlessly.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq zookeeper >&2
  have || { echo "zookeeper-local: $zk_jar or java still missing after apt-get install zookeeper" >&2; exit 1; }
}

classpath() {
  have || { echo "zookeeper-local: ZooKeeper is not installed; run make deps (deploy/zookeeper-local.sh install)" >&2; exit 1; }
  echo "$zk_jar"
}

case ${1:-} in
  install) install ;;
  classpath) classpath ;;
  *) echo "usage: $0 install | classpath" >&2; exit 2 ;;
esac
