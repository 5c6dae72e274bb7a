#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine (munge, MariaDB + slurmdbd for sacct, slurmctld, slurmd), for the
# tests marked `slurm` and for trying ganneal's cluster commands without a cluster. Needs root and apt; no systemd.
#
#   scripts/slurm_cluster.sh up       install what is missing, configure this host, start, wait until the node is idle
#   scripts/slurm_cluster.sh down     stop the daemons it started (by pid)
#   scripts/slurm_cluster.sh status   sinfo, or why there is no cluster
#
# It writes /etc/slurm/{slurm,slurmdbd}.conf marked as its own and refuses to touch a configuration it did not write.
# Exit 2 with a message (and nothing changed) where it cannot run: not root, no apt-get, a foreign SLURM config.
set -euo pipefail

MARK="# written by ganneal scripts/slurm_cluster.sh"
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
LOGS=/var/log/slurm
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
CLUSTER=ganneal
PARTITION=debug

say() { echo "slurm_cluster: $*"; }
refuse() { echo "slurm_cluster: $*" >&2; exit 2; }

preflight() {
  [[ $(id -u) == 0 ]] || refuse "needs root (it installs packages and starts daemons); run it as root or skip the slurm tests"
  if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
    refuse "$CONF exists and was not written by this script; use that cluster, or move it away first"
  fi
  local missing=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    command -v apt-get >/dev/null || refuse "needs apt-get to install ${missing[*]}"
    say "installing ${missing[*]} (apt, a minute or two)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/slurm_cluster_apt.log 2>&1 \
      || { apt-get update >>/tmp/slurm_cluster_apt.log 2>&1 &&  # stale package lists on a fresh machine
           DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
             >>/tmp/slurm_cluster_apt.log 2>&1; } \
      || refuse "apt-get install failed; see /tmp/slurm_cluster_apt.log"
  fi
}

write_configs() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  mkdir -p /etc/slurm "$LOGS" /var/spool/slurmctld /var/spool/slurmd
  cat >"$CONF" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobRequeue=1
ReturnToService=2
KillWait=30
MpiDefault=none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$DBD_CONF" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=ganneal
StorageLoc=slurm_acct_db
PidFile=/run/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
EOF
  chmod 600 "$DBD_CONF"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for ((i = 0; i < limit; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  refuse "$what did not come up in ${limit} s (logs: $LOGS)"
}

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
  preflight
  write_configs
  mkdir -p /run/munge && chown munge:munge /run/munge
  running /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
  wait_for 10 munge munge -n
  if ! mysqladmin ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    (setsid mysqld_safe --user=mysql >/dev/null 2>&1 &)
    wait_for 60 MariaDB mysqladmin ping
  fi
  mysql -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'ganneal';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  running /run/slurmdbd.pid || slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
  sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  running /run/slurmctld.pid || slurmctld
  running /run/slurmd.pid || slurmd
  wait_for 60 "the node" bash -c "sinfo -h -o %T | grep -qxE 'idle|mixed|allocated|completing'"
  say "up: $(sinfo -h -o '%P %D node(s) %T, %c CPUs')"
}

down() {
  for pid in /run/slurmd.pid /run/slurmctld.pid /run/slurmdbd.pid /run/munge/munged.pid; do
    if running "$pid"; then kill "$(cat "$pid")"; fi
  done
  if mysqladmin ping >/dev/null 2>&1 && [[ -f $DBD_CONF ]] && grep -qF "$MARK" "$DBD_CONF"; then
    mysqladmin shutdown || true
  fi
  say "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) sinfo 2>/dev/null || refuse "no cluster answers (scripts/slurm_cluster.sh up starts one)" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
