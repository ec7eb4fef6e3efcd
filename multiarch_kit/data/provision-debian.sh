#!/usr/bin/env bash
# Provision a bare Debian 12 or 13 machine as the multiarch-kit build lab.
#
# Run as root. Safe to repeat: every step checks first and says what it does.
# It never touches a Docker engine that already answers, and refuses macOS and
# non-Debian systems (Docker Desktop is the engine there).
#
# Files it may change, and nothing else:
#   /etc/docker/daemon.json                       (merges containerd-snapshotter: true)
#   /etc/apt/sources.list.d/multiarch-kit-trixie.sources
#   /etc/apt/preferences.d/multiarch-kit-trixie   (Debian 12 only, both removed before exit)
#   dpkg's foreign architectures                  (adds arm64/armhf/amd64 for busybox-static)
#   /var/run/docker.pid                           (removed only when its process is gone)
#   $MULTIARCH_KIT_LAB/logs/, $MULTIARCH_KIT_LAB/run/, $MULTIARCH_KIT_LAB/base/debs/
# Packages it installs: docker.io containerd docker-buildx (Debian 13 versions),
# qemu-user-static binfmt-support docker-registry skopeo mmdebstrap arch-test.
set -euo pipefail

LAB_DIR=${MULTIARCH_KIT_LAB:-${HOME:-/root}/.local/state/multiarch-kit}
LOG_DIR=$LAB_DIR/logs
RUN_DIR=$LAB_DIR/run   # pid files of the daemons this script starts, so 'multiarch-kit lab down' stops only those
DEB_DIR=$LAB_DIR/base/debs
TRIXIE_LIST=/etc/apt/sources.list.d/multiarch-kit-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/multiarch-kit-trixie
# The lab's three platforms as Debian architectures (busybox-static stand-in base).
BASE_ARCHES="amd64 arm64 armhf"

step() { printf '==> %s\n' "$*"; }
die() { printf 'provision-debian: %s\n' "$*" >&2; exit 1; }

[ "$(uname -s)" = Linux ] || die "this script provisions Debian only; on macOS start Docker Desktop instead."
# shellcheck disable=SC1091
[ -r /etc/os-release ] && . /etc/os-release
[ "${ID:-}" = debian ] || die "this script supports Debian 12 or 13 only (found '${PRETTY_NAME:-unknown}'); install Docker yourself and run 'make run' again."
case "${VERSION_ID:-}" in 12|13) ;; *) die "Debian ${VERSION_ID:-?} is not supported; use Debian 12 or 13." ;; esac
[ "$(id -u)" = 0 ] || die "run as root (sudo $0): it installs packages and starts dockerd."

mkdir -p "$LOG_DIR" "$DEB_DIR" "$RUN_DIR"

engine_answers() { timeout 10 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }
installed_version() { { dpkg-query -W -f '${Status} ${Version}\n' "$1" 2>/dev/null || true; } | sed -n 's/^install ok installed //p'; }

apt_updated=0
# Mirrors here sometimes serve an index mid-sync; retry, then go on with what was fetched.
apt_update() {
  [ $apt_updated = 0 ] || return 0
  local try
  for try in 1 2 3; do
    step "apt-get update"
    apt-get update -qq && { apt_updated=1; return 0; }
    sleep $((try * 5))
  done
  step "warning: apt-get update kept failing; continuing with the indexes it fetched"
  apt_updated=1
}
apt_install() {
  local missing=() p
  for p in "$@"; do [ -n "$(installed_version "${p%%/*}")" ] || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then step "already installed: $*"; return; fi
  apt_update
  step "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Debian 12's docker.io (20.10) cannot export type=docker; Debian 13's 26.1 can and installs on
# Debian 12 as is. Its suite is reached through a temporary list whose URIs are this machine's own.
trixie_source_list() {
  local uris keyring
  uris=$(awk -v code="$VERSION_CODENAME" '
      /^URIs:/ {u=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i==code) ok=1}
      /^Signed-By:/ {k=$2}
      /^$/ {if (ok && !found) {print u; found=1} ok=0}
      END {if (ok && !found) print u}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  keyring=$(awk '/^Signed-By:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$uris" ] && [ -r /etc/apt/sources.list ]; then
    uris=$(awk -v code="$VERSION_CODENAME" '$1=="deb" && $3==code {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uris" ] || die "no apt source for '$VERSION_CODENAME' found in /etc/apt/sources.list(.d); add one and retry."
  keyring=${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' "$uris" "$keyring"
}

install_engine() {
  local v
  v=$(installed_version docker.io)
  if [ -n "$v" ] && dpkg --compare-versions "$v" ge 26 && [ -n "$(installed_version docker-buildx)" ]; then
    step "engine packages present (docker.io $v)"; return
  fi
  if [ "$VERSION_ID" = 13 ]; then apt_install docker.io containerd docker-buildx; return; fi
  step "adding a temporary apt source for Debian 13 (trixie) from this machine's own mirror"
  trixie_source_list > "$TRIXIE_LIST"
  # Low priority: only the three packages named with /trixie come from Debian 13; every dependency
  # (libc6, iptables, runc...) stays Debian 12's. Without it apt would take trixie's newer versions of
  # the dependencies too, and with them libc6 2.41 and base-files 13.
  mkdir -p "$(dirname "$TRIXIE_PIN")"
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > "$TRIXIE_PIN"
  trap 'rm -f "$TRIXIE_LIST" "$TRIXIE_PIN"' EXIT
  apt_updated=0; apt_update
  step "apt-get install docker.io/trixie containerd/trixie docker-buildx/trixie"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io/trixie containerd/trixie docker-buildx/trixie >/dev/null
  rm -f "$TRIXIE_LIST" "$TRIXIE_PIN"; trap - EXIT
  step "removed the temporary trixie source"
  apt_updated=0
}

merge_daemon_json() {
  step "ensuring /etc/docker/daemon.json enables the containerd image store"
  mkdir -p /etc/docker
  python3 - <<'PY'
import json, os
path = "/etc/docker/daemon.json"
cfg = {}
if os.path.exists(path) and os.path.getsize(path):
    with open(path) as f:
        cfg = json.load(f)
features = cfg.setdefault("features", {})
if features.get("containerd-snapshotter") is not True:
    features["containerd-snapshotter"] = True
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    print("    merged features.containerd-snapshotter=true")
else:
    print("    already set")
PY
}

start_engine() {
  if ! timeout 5 ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; then
    step "starting containerd (log: $LOG_DIR/containerd.log)"
    setsid nohup containerd >>"$LOG_DIR/containerd.log" 2>&1 < /dev/null &
    echo $! > "$RUN_DIR/containerd.pid"
    for _ in $(seq 50); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.2; done
  fi
  # A dockerd killed without cleanup leaves its pid file behind and refuses to start again.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    step "removing stale /var/run/docker.pid"; rm -f /var/run/docker.pid
  fi
  step "starting dockerd (log: $LOG_DIR/dockerd.log)"
  setsid nohup dockerd --containerd=/run/containerd/containerd.sock >>"$LOG_DIR/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/dockerd.pid"
  for _ in $(seq 120); do engine_answers && { step "engine answers"; return; }; sleep 0.5; done
  die "dockerd did not answer within 60 s; see $LOG_DIR/dockerd.log"
}

setup_binfmt() {
  if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    step "mounting binfmt_misc"
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  step "update-binfmts --enable"
  update-binfmts --enable >/dev/null 2>&1 || true
}

fetch_busybox() {
  local native arch want=() have
  native=$(dpkg --print-architecture)
  for arch in $BASE_ARCHES; do
    ls "$DEB_DIR"/busybox-static_*_"$arch".deb >/dev/null 2>&1 || want+=("$arch")
  done
  if [ ${#want[@]} -eq 0 ]; then step "busybox-static debs present in $DEB_DIR"; return; fi
  have=$(dpkg --print-foreign-architectures)
  for arch in "${want[@]}"; do
    if [ "$arch" != "$native" ] && ! grep -qx "$arch" <<<"$have"; then
      step "dpkg --add-architecture $arch"; dpkg --add-architecture "$arch"; apt_updated=0
    fi
  done
  apt_update
  step "apt-get download ${want[*]/#/busybox-static:} (stand-in base image)"
  (cd "$DEB_DIR" && apt-get download -qq -o APT::Sandbox::User=root "${want[@]/#/busybox-static:}")
}

# Emulation comes before the engine: BuildKit lists the platforms it can build when dockerd starts.
apt_install qemu-user-static binfmt-support docker-registry skopeo mmdebstrap arch-test
setup_binfmt
if engine_answers; then
  step "a Docker engine already answers: leaving it as it is"
else
  install_engine
  merge_daemon_json
  start_engine
fi
fetch_busybox
step "provisioning done"
