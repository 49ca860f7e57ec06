#!/usr/bin/env bash
# Installs ovn-gateway as a systemd service on Raspberry Pi OS (or any Debian with systemd),
# from a built clone:   npm ci && npm run build && sudo deploy/install.sh
# Running it again updates the gateway and keeps the config and the data.
#
#   deploy/install.sh [--prefix DIR] [--root DIR] [--skip-npm]
#   deploy/install.sh --uninstall [--purge] [--prefix DIR] [--root DIR]
#
#   --prefix DIR   where the gateway goes (default /opt/ovn-gateway)
#   --root DIR     install into DIR as the file system root (a scratch root or an image being
#                  prepared): users are added to DIR/etc/passwd, the unit is enabled with
#                  systemctl --root, and nothing on the running system is touched
#   --skip-npm     keep the dependencies already in the prefix (no npm ci)
#   --uninstall    remove the service, the program and the command; config and data stay
#   --purge        with --uninstall: also remove /etc/ovn-gateway, /var/lib/ovn-gateway and the user
set -euo pipefail

PREFIX=/opt/ovn-gateway
ROOT=/
UNINSTALL=0
PURGE=0
SKIP_NPM=0
NAME=ovn-gateway
CONF_DIR=/etc/ovn-gateway
DATA_DIR=/var/lib/ovn-gateway
UNIT=/etc/systemd/system/ovn-gateway.service
COMMAND=/usr/local/bin/ovn-gateway
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "• $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
    --skip-npm) SKIP_NPM=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path, got $PREFIX" ;; esac
[ "$PURGE" = 0 ] || [ "$UNINSTALL" = 1 ] || die "--purge goes with --uninstall"
ROOT=$(cd "$ROOT" 2>/dev/null && pwd) || die "--root: no such directory"
[ "$ROOT" = / ] && ON_SYSTEM=1 || ON_SYSTEM=0
[ "$ON_SYSTEM" = 0 ] || [ "$(id -u)" = 0 ] || die "run it as root: sudo $0 $*"

# A path inside the root.
at() { if [ "$ON_SYSTEM" = 1 ]; then echo "$1"; else echo "$ROOT$1"; fi; }
# useradd, groupadd… on the root's own /etc.
rootopt() { [ "$ON_SYSTEM" = 1 ] || echo "--root=$ROOT"; }
has_group() { grep -q "^$1:" "$(at /etc/group)" 2>/dev/null; }
has_user() { grep -q "^$1:" "$(at /etc/passwd)" 2>/dev/null; }
id_of() { awk -F: -v n="$2" '$1 == n { print $3 }' "$(at "$1")"; }
systemd_running() { [ "$ON_SYSTEM" = 1 ] && [ -d /run/systemd/system ]; }

uninstall() {
  if systemd_running; then
    systemctl disable --now "$NAME" 2>/dev/null || true
  elif command -v systemctl >/dev/null && [ -f "$(at "$UNIT")" ]; then
    systemctl $(rootopt) disable "$NAME" >/dev/null 2>&1 || true
  fi
  # only a directory this script installed: a mistyped --prefix (/opt, /usr) is never removed
  if [ -e "$(at "$PREFIX")" ] && [ ! -f "$(at "$PREFIX")/bin/ovn-gateway.js" ]; then
    die "$PREFIX does not look like an installed gateway (no bin/ovn-gateway.js): not removing it"
  fi
  rm -f "$(at "$UNIT")" "$(at "$COMMAND")"
  rm -rf "$(at "$PREFIX")"
  if systemd_running; then systemctl daemon-reload; fi
  say "removed the service, $PREFIX and $COMMAND"
  if [ "$PURGE" = 1 ]; then
    rm -rf "$(at "$CONF_DIR")" "$(at "$DATA_DIR")"
    if has_user "$NAME"; then userdel $(rootopt) "$NAME" >/dev/null 2>&1 || die "cannot remove the user $NAME"; fi
    say "removed $CONF_DIR, $DATA_DIR (the journal) and the user $NAME"
  else
    say "kept $CONF_DIR and $DATA_DIR (the journal); --uninstall --purge removes them"
  fi
}

install_program() {
  local node
  node=$(command -v node) || die "Node.js 20 or newer is needed (https://github.com/nodesource/distributions, or apt-get install nodejs on Debian 13)"
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "Node.js $(node --version) is too old: 20 or newer is needed"
  node=$(readlink -f "$node")
  # the unit has ProtectHome=yes: a node under /home or /root (nvm) cannot be started by it
  case "$node" in /home/* | /root/*) die "node is at $node, which the service cannot reach (ProtectHome): install Node.js system-wide (e.g. NodeSource's nodejs package)" ;; esac
  command -v python3 >/dev/null || die "python3 is needed (it tells systemd the gateway is ready): apt-get install python3"
  [ -f "$SRC/dist/gateway/src/cli/main.js" ] || die "$SRC is not built: run npm ci && npm run build there first"

  # the groups of serial ports and GPIO (Raspberry Pi OS has both; a plain Debian may lack gpio)
  for g in dialout gpio; do
    has_group "$g" || { groupadd $(rootopt) --system "$g"; say "made the group $g"; }
  done
  if ! has_user "$NAME"; then
    useradd $(rootopt) --system --user-group --home-dir "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin "$NAME" 2> >(grep -v 'missing or non-executable shell' >&2)
    say "made the system user $NAME"
  fi
  usermod $(rootopt) -a -G dialout,gpio "$NAME"
  local uid gid
  uid=$(id_of /etc/passwd "$NAME")
  gid=$(id_of /etc/group "$NAME")

  # The program: a fresh copy next to the old one, then swapped, so a failed npm ci leaves the old one working.
  local dest next
  dest=$(at "$PREFIX")
  next="$dest.new"
  rm -rf "$next"
  mkdir -p "$next"
  cp -a "$SRC/bin" "$SRC/dist" "$SRC/package.json" "$SRC/package-lock.json" "$SRC/README.md" "$SRC/docs" "$SRC/deploy" "$next/"
  mkdir -p "$next/gateway"
  [ ! -d "$SRC/gateway/web" ] || cp -a "$SRC/gateway/web" "$next/gateway/"
  # native modules (better-sqlite3, serialport) are built for one Node.js ABI: a new Node major needs them again
  local abi
  abi=$(node -p process.versions.modules)
  echo "$abi" >"$next/.node-abi"
  if [ -d "$dest/node_modules" ] && { [ "$SKIP_NPM" = 1 ] || { cmp -s "$dest/package-lock.json" "$SRC/package-lock.json" && [ "$(cat "$dest/.node-abi" 2>/dev/null)" = "$abi" ]; }; }; then
    mv "$dest/node_modules" "$next/node_modules"
    say "kept the installed dependencies"
  elif [ "$SKIP_NPM" = 1 ]; then
    die "--skip-npm, but no dependencies are installed yet at $PREFIX: run it once without --skip-npm"
  else
    say "installing the dependencies (npm ci --omit=dev; a few minutes on a Pi Zero)"
    (cd "$next" && npm ci --omit=dev --no-audit --no-fund) || die "npm ci failed; the installed gateway was left as it was"
  fi
  rm -rf "$dest.old"
  [ ! -d "$dest" ] || mv "$dest" "$dest.old"
  mv "$next" "$dest"
  rm -rf "$dest.old"
  chown -R 0:0 "$dest"
  chmod -R u=rwX,go=rX "$dest"
  say "installed the gateway in $PREFIX"

  mkdir -p "$(dirname "$(at "$COMMAND")")"
  ln -sfn "$PREFIX/bin/ovn-gateway.js" "$(at "$COMMAND")"

  # The config: root writes it, the service reads it (it may hold a ledger token).
  mkdir -p "$(at "$CONF_DIR")"
  chown 0:"$gid" "$(at "$CONF_DIR")"
  chmod 750 "$(at "$CONF_DIR")"
  if [ ! -f "$(at "$CONF_DIR/gateway.yaml")" ]; then
    cp "$SRC/deploy/gateway.example.yaml" "$(at "$CONF_DIR/gateway.yaml")"
    chown 0:"$gid" "$(at "$CONF_DIR/gateway.yaml")"
    chmod 640 "$(at "$CONF_DIR/gateway.yaml")"
    say "put an example config in $CONF_DIR/gateway.yaml: edit it before starting"
  else
    say "kept the config $CONF_DIR/gateway.yaml"
  fi
  install -m 644 "$SRC/deploy/99-ovn-gateway.rules" "$(at "$CONF_DIR/99-ovn-gateway.rules.example")"

  # The data: the journal, only the service writes it.
  mkdir -p "$(at "$DATA_DIR")"
  chown "$uid:$gid" "$(at "$DATA_DIR")"
  chmod 750 "$(at "$DATA_DIR")"

  mkdir -p "$(dirname "$(at "$UNIT")")"
  sed -e "s#/opt/ovn-gateway#$PREFIX#g" -e "s#/usr/bin/node #$node #" "$SRC/deploy/ovn-gateway.service" > "$(at "$UNIT")"
  chmod 644 "$(at "$UNIT")"
  if systemd_running; then
    systemctl daemon-reload
    systemctl enable "$NAME" >/dev/null 2>&1
    if systemctl is-active --quiet "$NAME"; then
      systemctl restart "$NAME"
      say "restarted the running service with the new version"
    else
      say "enabled the service; start it with: sudo systemctl start $NAME"
    fi
  elif command -v systemctl >/dev/null; then
    systemctl $(rootopt) enable "$NAME" >/dev/null 2>&1 || die "systemctl could not enable $NAME in $ROOT"
    say "enabled the service in $ROOT"
  fi
  say "done: check the config with 'sudo -u $NAME ovn-gateway config check $CONF_DIR/gateway.yaml', then watch 'journalctl -u $NAME -f'"
}

if [ "$UNINSTALL" = 1 ]; then uninstall; else install_program; fi
