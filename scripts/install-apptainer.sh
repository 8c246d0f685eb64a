#!/usr/bin/env bash
# Install Apptainer on Debian 12 (bookworm) as root, and make `apptainer exec` and
# `apptainer build --fakeroot` work for root. Idempotent; used by .ci/run and by developers.
#
# Apptainer is not packaged for bookworm; Debian sid has it. sid (and trixie) are pinned to
# priority 100 so that nothing else is taken from them: `apt-get install -t sid apptainer` pulls
# only apptainer and the libraries it needs (a newer glibc among them). Never install
# `apptainer/sid libc6/sid` by name: that resolution removes build-essential.
set -euo pipefail

say() { printf 'install-apptainer: %s\n' "$*" >&2; }
[[ $(id -u) -eq 0 ]] || { say "run as root"; exit 1; }

if ! command -v apptainer >/dev/null 2>&1; then
  say "adding Debian sid (pinned to priority 100) and installing apptainer"
  cat > /etc/apt/sources.list.d/lute-sid.list <<'LIST'
deb http://deb.debian.org/debian sid main
LIST
  cat > /etc/apt/preferences.d/lute-sid <<'PREF'
Package: *
Pin: release a=unstable
Pin-Priority: 100

Package: *
Pin: release a=trixie
Pin-Priority: 100

Package: *
Pin: release n=trixie
Pin-Priority: 100
PREF
  apt-get -o Acquire::Check-Valid-Until=false update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false install -y -qq -t sid apptainer >/dev/null
fi
# debootstrap builds the base image from the Debian archive; squashfs-tools/uidmap for builds.
missing=()
for tool in debootstrap mksquashfs newuidmap; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if ((${#missing[@]})); then
  say "installing debootstrap squashfs-tools uidmap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap squashfs-tools uidmap >/dev/null
fi

conf=/etc/apptainer/apptainer.conf
# Root in this kind of sandbox lacks CAP_SYS_RESOURCE: with the default (full) capability set,
# every `apptainer exec` as root fails. Give root only the capabilities it really has.
if ! grep -q '^root default capabilities = file' "$conf"; then
  say "root default capabilities = file"
  sed -i 's/^root default capabilities = .*/root default capabilities = file/' "$conf"
  grep -q '^root default capabilities = file' "$conf" || echo 'root default capabilities = file' >> "$conf"
fi
caps=$(python3 - <<'PY'
import re
names = ["CHOWN","DAC_OVERRIDE","DAC_READ_SEARCH","FOWNER","FSETID","KILL","SETGID","SETUID","SETPCAP",
 "LINUX_IMMUTABLE","NET_BIND_SERVICE","NET_BROADCAST","NET_ADMIN","NET_RAW","IPC_LOCK","IPC_OWNER",
 "SYS_MODULE","SYS_RAWIO","SYS_CHROOT","SYS_PTRACE","SYS_PACCT","SYS_ADMIN","SYS_BOOT","SYS_NICE",
 "SYS_RESOURCE","SYS_TIME","SYS_TTY_CONFIG","MKNOD","LEASE","AUDIT_WRITE","AUDIT_CONTROL","SETFCAP",
 "MAC_OVERRIDE","MAC_ADMIN","SYSLOG","WAKE_ALARM","BLOCK_SUSPEND","AUDIT_READ","PERFMON","BPF",
 "CHECKPOINT_RESTORE"]
bnd = int(re.search(r"CapBnd:\s*([0-9a-f]+)", open("/proc/self/status").read()).group(1), 16)
print(",".join("CAP_" + n for i, n in enumerate(names) if bnd >> i & 1))
PY
)
apptainer capability add --user root "$caps" >/dev/null
# `apptainer build --fakeroot` (recipes with %post) needs a subordinate id range for root.
for f in /etc/subuid /etc/subgid; do
  grep -q '^root:' "$f" 2>/dev/null || echo 'root:1000000:65536' >> "$f"
done
say "ready: $(apptainer --version)"
