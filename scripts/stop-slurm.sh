#!/usr/bin/env bash
# Stop the one-node Slurm cluster that scripts/start-slurm.sh started: slurmd, slurmctld, munged.
# Each daemon is found by its pid file and signalled only if that pid is still that daemon. Running
# job steps outlive slurmd (scancel them first); packages, slurm.conf and Slurm's state stay, and
# start-slurm.sh brings the cluster back with the jobs it knew.
set -euo pipefail

say() { printf 'stop-slurm: %s\n' "$*" >&2; }
[[ $(id -u) -eq 0 ]] || { say "run as root"; exit 1; }

stop() { # pid file, command name
  local pid i
  [[ -r $1 ]] || return 0
  pid="$(<"$1")"
  [[ -n $pid && -r /proc/$pid/comm && "$(</proc/"$pid"/comm)" == "$2" ]] || return 0
  say "stopping $2 (pid $pid)"
  kill -TERM "$pid"
  for ((i = 0; i < 150; i++)); do
    [[ -d /proc/$pid ]] || return 0
    sleep 0.1
  done
  say "$2 (pid $pid) is still running after 15 s"
  return 1
}

stop /run/slurmd.pid slurmd
stop /run/slurmctld.pid slurmctld
stop /run/munge/munged.pid munged
say "stopped"
