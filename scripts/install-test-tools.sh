#!/usr/bin/env bash
# Installs the real tools the test suites use as referees, each only when missing. Idempotent; safe
# to run as root in CI (otherwise apt-get runs under sudo).
#   promtool   -> <repo>/.tools/bin/promtool (extracted from Debian's prometheus .deb, not installed)
#   prometheus -> <repo>/.tools/bin/prometheus (the same .deb; the real-scrape staleness test runs it)
#   microsocks -> apt-get install (SOCKS5 proxy for routing tests)
#   sqlite3    -> apt-get install (lock checks in store tests)
#   zlib1g-dev -> apt-get install when /usr/include/zlib.h is missing (KubeSim's SPDY, Sources/CZlib)
#   rethinkdb  -> python3 -m pip install rethinkdb==2.4.10.post1 into the python3 first on PATH
#                 (activate a virtualenv first to keep it out of the system Python)
#   kubectl    -> checked, not installed: $KUBECTL or the first kubectl on PATH
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_bin="$repo_root/.tools/bin"
apt_updated=0

if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi

apt_update_once() {
    if [ "$apt_updated" -eq 0 ]; then
        "${sudo_cmd[@]}" apt-get update -qq
        apt_updated=1
    fi
}

# Ensures the Debian package $1 is downloadable/installable; updates the lists once when apt does not know it.
ensure_apt_knows() {
    if ! apt-cache show "$1" >/dev/null 2>&1; then
        apt_update_once
    fi
}

install_if_missing() {
    local command_name="$1" package="$2"
    if command -v "$command_name" >/dev/null 2>&1; then
        return 0
    fi
    ensure_apt_knows "$package"
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$package" >/dev/null
    command -v "$command_name" >/dev/null 2>&1 || { echo "error: $package installed but $command_name not found" >&2; exit 1; }
}

install_promtool() {
    if [ -x "$tools_bin/promtool" ] && "$tools_bin/promtool" --version >/dev/null 2>&1 \
        && [ -x "$tools_bin/prometheus" ] && "$tools_bin/prometheus" --version >/dev/null 2>&1; then
        return 0
    fi
    ensure_apt_knows prometheus
    work_dir="$(mktemp -d)"
    trap 'rm -rf "$work_dir"' EXIT
    local work="$work_dir"
    # As root, apt drops to the _apt user to download, which cannot write into a private temp dir.
    local sandbox=()
    if [ "$(id -u)" -eq 0 ]; then sandbox=(-o APT::Sandbox::User=root); fi
    (cd "$work" && apt-get download -qq "${sandbox[@]}" prometheus >/dev/null)
    local deb
    deb="$(find "$work" -maxdepth 1 -name 'prometheus_*.deb' | head -n 1)"
    [ -n "$deb" ] || { echo "error: apt-get download prometheus produced no .deb" >&2; exit 1; }
    dpkg-deb -x "$deb" "$work/root"
    mkdir -p "$tools_bin"
    install -m 0755 "$work/root/usr/bin/promtool" "$tools_bin/promtool.tmp"
    mv -f "$tools_bin/promtool.tmp" "$tools_bin/promtool"
    "$tools_bin/promtool" --version >/dev/null
    install -m 0755 "$work/root/usr/bin/prometheus" "$tools_bin/prometheus.tmp"
    mv -f "$tools_bin/prometheus.tmp" "$tools_bin/prometheus"
    "$tools_bin/prometheus" --version >/dev/null
}

# KubeSim's SPDY header compression links the system zlib (Sources/CZlib): its headers must be there.
if [ ! -f /usr/include/zlib.h ]; then
    ensure_apt_knows zlib1g-dev
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq zlib1g-dev >/dev/null
fi

install_promtool
install_if_missing microsocks microsocks
install_if_missing sqlite3 sqlite3

echo "test tools ready: $tools_bin/promtool, $tools_bin/prometheus, $(command -v microsocks), $(command -v sqlite3)"

# kubectl referees KubeSim: $KUBECTL, else the first kubectl on PATH. It is not installed here
# (its packages are not in Debian's main archive); install it from https://kubernetes.io/docs/tasks/tools/.
kubectl_path="${KUBECTL:-$(command -v kubectl || true)}"
if [ -z "$kubectl_path" ] || [ ! -x "$kubectl_path" ]; then
    echo "error: kubectl is not on PATH (or KUBECTL is not executable); the KubeSim referee tests run the real kubectl." >&2
    echo "       Install it (https://kubernetes.io/docs/tasks/tools/) or set KUBECTL=/path/to/kubectl." >&2
    exit 1
fi
echo "kubectl ready: $kubectl_path"

# The official Python RethinkDB driver referees RethinkSim.
if ! python3 -c 'import rethinkdb' >/dev/null 2>&1; then
    echo "installing the Python rethinkdb driver into $(python3 -c 'import sys; print(sys.prefix)') (pip)"
    python3 -m pip install --quiet --disable-pip-version-check 'rethinkdb==2.4.10.post1'
fi
python3 -c 'import rethinkdb' || { echo "error: the Python rethinkdb driver is not importable" >&2; exit 1; }
echo "rethinkdb driver ready: $(python3 -c 'import rethinkdb, os; print(os.path.dirname(rethinkdb.__file__))')"

# Python `cryptography` (AESGCM) encrypts the Go-shaped credential fixtures independently of hostapp
# (scripts/referee/go_credentials_fixture.py); Debian's python3-cryptography is enough when present.
if ! python3 -c 'import cryptography.hazmat.primitives.ciphers.aead' >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'cryptography>=41'
fi
python3 -c 'from cryptography.hazmat.primitives.ciphers.aead import AESGCM' || { echo "error: the Python cryptography package is not importable" >&2; exit 1; }
echo "cryptography ready: $(python3 -c 'import cryptography; print(cryptography.__version__)')"
