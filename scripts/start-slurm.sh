#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine, with MPICH for `srun --mpi=pmi2`.
#
#   bash scripts/start-slurm.sh            install (first time), configure, start, wait until the node is idle
#   bash scripts/start-slurm.sh --verify   also run 2-rank MPI checks (srun + mpi4py, srun + apptainer + mpi4py)
#   bash scripts/stop-slurm.sh             stop the daemons again
#
# For Debian 12 (bookworm), as root, without systemd: used by .ci/run and by developers. Idempotent:
# with the daemons up and the configuration unchanged it only checks that `sinfo` shows the node up
# (resuming it when it is down or drained). What it does:
#   1. apt-installs slurmctld slurmd slurm-client munge and MPICH (mpich libmpich-dev) when missing:
#      every MPI package must be in place before slurmd starts (its MPI plugins load at start-up).
#   2. Names MPICH's library the way PyPI's mpi4py looks for it: libmpi.so.12 -> libmpich.so.12.
#   3. Writes /etc/slurm/slurm.conf for this host (node = `hostname -s`, CPUs = nproc, RealMemory 90% of
#      RAM, partition `debug`, proctrack/linuxproc + task/none: no cgroups needed). A slurm.conf not
#      written by this script is never overwritten (set LUTE_SLURM_FORCE=1 to replace it).
#   4. Creates the munge key when absent (0400, owned by munge), starts munged as user munge, then
#      slurmctld and slurmd (SlurmUser=root), and waits (bounded) for `scontrol ping` and the node to be up (idle, or running jobs).
# Logs: /var/log/slurm/{slurmctld,slurmd}.log, /var/log/munge/munged.log. State: /var/spool/slurm*.
set -euo pipefail

say() { printf 'start-slurm: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

VERIFY=0
for arg in "$@"; do
  case "$arg" in
    --verify) VERIFY=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument $arg (try --help)" ;;
  esac
done

[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and starts system daemons)"
command -v apt-get >/dev/null 2>&1 || die "this script is for Debian (apt-get not found)"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONF=/etc/slurm/slurm.conf
MARKER="# Written by lute-kernel scripts/start-slurm.sh"
NODE="$(hostname -s)"
PARTITION=debug

# --- 1. Packages ----------------------------------------------------------------------------------
PACKAGES=(munge slurmctld slurmd slurm-client mpich libmpich-dev)
missing=()
installed=0
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]} (apt, no recommends)"
  apt-get -o Acquire::Check-Valid-Until=false update -qq
  # The packages' maintainer scripts would try to start the daemons (there is no init here, and no
  # config yet): a policy-rc.d that denies every start keeps them quiet. Removed right after.
  policy=/usr/sbin/policy-rc.d
  had_policy=0
  [[ -e $policy ]] && had_policy=1
  if ((!had_policy)); then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy"; fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  ((had_policy)) || rm -f "$policy"
  ((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc)"
  installed=1
fi
for tool in munged slurmctld slurmd sbatch srun scontrol sinfo mpiexec.mpich; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing after the install"
done

# --- 2. libmpi.so.12 for PyPI's mpi4py ------------------------------------------------------------
shopt -s nullglob
mpich_libs=(/usr/lib/*/libmpich.so.12)
shopt -u nullglob
((${#mpich_libs[@]})) || die "MPICH's libmpich.so.12 not found under /usr/lib/*/"
for lib in "${mpich_libs[@]}"; do
  link="$(dirname "$lib")/libmpi.so.12"
  if [[ ! -e $link ]]; then
    say "linking $link -> libmpich.so.12 (the name PyPI's mpi4py loads)"
    ln -s libmpich.so.12 "$link"
    ldconfig
  fi
done

# --- 3. slurm.conf --------------------------------------------------------------------------------
cpus="$(nproc)"
mem_total_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
real_memory=$((mem_total_mb * 9 / 10))
addr="" # a host name that does not resolve: reach this node over loopback
getent hosts "$NODE" >/dev/null 2>&1 || addr=127.0.0.1
wanted="$(
  cat <<CONF
$MARKER (one-node cluster for development and CI).
ClusterName=lute
SlurmctldHost=$NODE${addr:+($addr)}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
MailProg=/bin/true
# No systemd or cgroup delegation here: track processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
# Reject at submission a job this cluster can never run (else it pends forever).
EnforcePartLimits=ALL
# Seconds between SIGTERM and SIGKILL when a job is cancelled or times out: the kernel inside
# records the run in that time.
KillWait=30
MinJobAge=300
SlurmctldTimeout=60
SlurmdTimeout=60
InactiveLimit=0
NodeName=$NODE ${addr:+NodeAddr=$addr }CPUs=$cpus RealMemory=$real_memory State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
)"

pid_alive() { # pidfile, command name
  local pid
  [[ -r $1 ]] || return 1
  pid="$(<"$1")"
  [[ -n $pid && -r /proc/$pid/comm && "$(</proc/"$pid"/comm)" == "$2" ]]
}

stop_daemon() { # pidfile, command name, why: only the daemon whose pid is recorded there
  local pid i
  pid_alive "$1" "$2" || return 0
  pid="$(<"$1")"
  say "stopping $2 (pid $pid) $3"
  kill -TERM "$pid"
  for ((i = 0; i < 100; i++)); do
    [[ -d /proc/$pid ]] || return 0
    sleep 0.1
  done
  die "$2 (pid $pid) did not stop within 10 s"
}

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF" && [[ ${LUTE_SLURM_FORCE:-0} != 1 ]]; then
  die "$CONF exists and was not written by this script; not touching it (LUTE_SLURM_FORCE=1 replaces it)"
fi
if [[ ! -f $CONF || "$(<"$CONF")" != "$wanted" ]]; then
  if [[ -f $CONF ]]; then
    cp "$CONF" "$CONF.bak"
    stop_daemon /run/slurmd.pid slurmd "to apply the new slurm.conf"
    stop_daemon /run/slurmctld.pid slurmctld "to apply the new slurm.conf"
  fi
  say "writing $CONF (node $NODE: $cpus CPUs, ${real_memory} MB; partition $PARTITION)"
  printf '%s\n' "$wanted" >"$CONF"
  chmod 0644 "$CONF"
fi
# slurmd loads its MPI plugins (and the libraries they need) when it starts.
((installed)) && stop_daemon /run/slurmd.pid slurmd "to load the packages just installed"

# --- 4. munge -------------------------------------------------------------------------------------
key=/etc/munge/munge.key
if [[ ! -s $key ]]; then
  say "creating the munge key $key"
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile="$key" --force
  else
    dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
  fi
fi
chown munge:munge "$key"
chmod 0400 "$key"
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
chmod 0755 /run/munge
chmod 0700 /var/log/munge /var/lib/munge /etc/munge

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
  say "starting munged (as user munge)"
  runuser -u munge -- /usr/sbin/munged || die "munged did not start: see /var/log/munge/munged.log"
  for ((i = 0; i < 50; i++)); do
    munge_ok && break
    sleep 0.1
  done
  munge_ok || die "munge does not work after starting munged: see /var/log/munge/munged.log"
fi

# --- 5. slurmctld and slurmd ----------------------------------------------------------------------
if ! pid_alive /run/slurmctld.pid slurmctld; then
  say "starting slurmctld"
  slurmctld || die "slurmctld did not start: see /var/log/slurm/slurmctld.log"
fi
ctld_up=0
for ((i = 0; i < 150; i++)); do
  if timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; then
    ctld_up=1
    break
  fi
  sleep 0.2
done
((ctld_up)) || die "slurmctld does not answer 'scontrol ping' after 30 s: see /var/log/slurm/slurmctld.log"

if ! pid_alive /run/slurmd.pid slurmd; then
  say "starting slurmd"
  slurmd || die "slurmd did not start: see /var/log/slurm/slurmd.log"
fi

node_state() { timeout 10 sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1; }
state=""
resumed=0
for ((i = 0; i < 150; i++)); do
  state="$(node_state)"
  case "$state" in
    idle | mixed | allocated | completing) break ;;
    down* | drain* | drained* | fail*)
      if ((!resumed)); then
        say "node $NODE is $state: resuming it"
        timeout 10 scontrol update nodename="$NODE" state=resume || true
        resumed=1
      fi
      ;;
  esac
  sleep 0.2
done
case "$state" in
  idle | mixed | allocated | completing) ;;
  *)
    reason="$(timeout 10 sinfo -h -R -n "$NODE" -o '%E' 2>/dev/null || true)"
    die "node $NODE is '${state:-unknown}' after 30 s${reason:+ (reason: $reason)}: see /var/log/slurm/slurmd.log"
    ;;
esac
timeout 60 srun -N1 -n1 true || die "'srun -n1 true' failed: see /var/log/slurm/slurmd.log"
say "ready: $(timeout 10 sinfo -V), node $NODE $state ($cpus CPUs), partition $PARTITION; srun --mpi=pmi2 with MPICH"

# --- Optional checks (--verify) -------------------------------------------------------------------
if ((VERIFY)); then
  say "verify: srun -n 2 --mpi=pmi2 hostname"
  timeout 60 srun -n 2 --mpi=pmi2 hostname
  py="$ROOT/.venv/bin/python"
  if [[ -x $py ]] && "$py" -c 'import mpi4py' 2>/dev/null; then
    say "verify: srun -n 2 --mpi=pmi2 $py -c 'from mpi4py import MPI; …'"
    out="$(timeout 60 srun -n 2 --mpi=pmi2 "$py" -c \
      'from mpi4py import MPI; c = MPI.COMM_WORLD; print(c.rank, c.size, c.allreduce(c.rank + 1))')"
    printf '%s\n' "$out"
    [[ "$(sort <<<"$out")" == $'0 2 3\n1 2 3' ]] || die "mpi4py under srun gave: $out"
  else
    say "verify: skipping the mpi4py check ($py has no mpi4py: run ./dev first)"
  fi
  image="$(cd "$ROOT" && [[ -x $py ]] && "$py" -c \
    'from lute_kernel.images import find_image; from lute_kernel.sites import load_site; print(find_image("psana2", load_site()).runnable)' \
    2>/dev/null || true)"
  if command -v apptainer >/dev/null 2>&1 && [[ -n $image && -e $image ]]; then
    say "verify: srun -n 2 --mpi=pmi2 apptainer exec --containall … $image (PMI_* passed in)"
    # MPICH's pmi2 client reads PMI_FD/PMI_RANK/PMI_SIZE/…, which --cleanenv drops: pass them in.
    # --containall gives each container a private /dev/shm (Apptainer skips a /dev/shm bind), so
    # MPICH must not use shared memory between ranks: MPIR_CVAR_NOLOCAL=1.
    # shellcheck disable=SC2016
    out="$(timeout 60 srun -n 2 --mpi=pmi2 bash -c '
      envs=(); for v in $(compgen -e | grep -E "^(PMI_|SLURM_)"); do envs+=(--env "$v=${!v}"); done
      exec apptainer exec --containall --cleanenv --no-home --env MPIR_CVAR_NOLOCAL=1 "${envs[@]}" "$0" \
        python3 -c "from mpi4py import MPI; c = MPI.COMM_WORLD; print(c.rank, c.size, c.allreduce(c.rank + 1))"
    ' "$image")"
    printf '%s\n' "$out"
    [[ "$(sort <<<"$out")" == $'0 2 3\n1 2 3' ]] || die "mpi4py in apptainer under srun gave: $out"
  else
    say "verify: skipping the apptainer check (no apptainer or no psana2 image: ./dev build-images psana2)"
  fi
  say "verify: ok"
fi
