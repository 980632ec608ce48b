#!/usr/bin/env bash
# One command sets nanocell up on a fresh Debian 12 / Ubuntu 22.04+ machine:
#   sudo scripts/setup.sh demo   install everything, then run the rogue-agent demo
#   sudo scripts/setup.sh test   install everything, then run the checks and the full test suite
set -euo pipefail

mode=${1:-demo}
case "$mode" in demo | test | install) ;; *)
  echo "usage: $0 demo|test|install" >&2
  exit 2
  ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E "$0" "$@"
fi

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "system packages"
# runc is the default runtime; crun and runsc (gVisor) are the alternatives `--runtime` takes;
# bubblewrap is a peer for benchmarks. libc6-dev provides the static libc nanocell-init needs;
# clang-format checks the native sources' format (`npm run check`). CPython's test package and
# Go are what test/compat runs on the host and in a cell. Chromium runs the dashboard's
# end-to-end tests (test/integration/ui, through playwright-core). nftables' nft loads the
# cells' transparent egress capture; dig and nslookup (bind9-dnsutils) are clients its tests run.
# strace shows a test which socket the native front looks for (server/front).
packages=(runc crun runsc bubblewrap uidmap gcc make libc6-dev clang-format git python3 strace
  python3-venv sqlite3 libpython3.11-testsuite golang-go curl wget openssl ca-certificates iproute2 util-linux bsdutils procps psmisc
  chromium nftables bind9-dnsutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# crun refuses every container on a v1/v2 hybrid cgroup layout whose v2 side holds a controller
# (one that no v1 hierarchy claims lands there, typically hugetlb). Binding it to its own v1
# hierarchy, as systemd's hybrid mode intends, fixes that and keeps every limit enforced. It is
# not persistent across reboots (`nanocell doctor --runtime crun` then prints this fix again)
# and is reversible: rmdir /sys/fs/cgroup/C/nanocell; umount /sys/fs/cgroup/C; rmdir /sys/fs/cgroup/C
if [ ! -e /sys/fs/cgroup/cgroup.controllers ] && [ -r /sys/fs/cgroup/unified/cgroup.controllers ]; then
  for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
    say "cgroups: binding the $c controller to a v1 hierarchy for crun"
    if ! { mkdir -p "/sys/fs/cgroup/$c" && mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"; }; then
      echo "could not move $c off cgroup v2: --runtime crun will not work here (runc and runsc do)" >&2
    fi
  done
fi

say "Node.js"
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ]; then
  # Debian 12 ships Node 18; Node 20 comes from the npm registry's node package.
  command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  npm install -g --silent node@20 >/dev/null
  hash -r
fi
echo "node $(node --version), npm $(npm --version)"

say "npm dependencies"
npm ci --no-audit --no-fund --loglevel=error

if [ "$mode" = test ]; then
  # First, and without root: typecheck, lint (layers, cycles), format, unused exports.
  say "static checks"
  npm run -s check
fi

say "native helpers"
make -s -C native

say "build"
npm run -s build

say "command"
# The bin is this checkout's native front (native/front/): it carries `nanocell run` to a
# running `nanocell serve` without starting node, and runs the bundled CLI
# (dist/cli/nanocell.mjs) for everything else, so `nanocell` works from any directory.
ln -sfn "$PWD/native/build/nanocell" /usr/local/bin/nanocell
echo "nanocell -> $(readlink /usr/local/bin/nanocell)"

if [ "$mode" = install ]; then
  exit 0
fi

if [ "$mode" = demo ]; then
  say "nanocell doctor"
  nanocell doctor || true
  say "nanocell demo"
  exec nanocell demo
fi

say "native tests under ASan and UBSan"
# Once with the sanitized helpers of `make -C native san` (native/build-san); any sanitizer
# report aborts the helper, so the tests that drive it fail. The full suite runs either way.
sanitized=0
NANOCELL_NATIVE_SANITIZE=1 npx vitest run test/integration/native test/unit/native || sanitized=$?

say "test suite"
# Rootless cells are tested as this unprivileged user.
id nanocell-ci >/dev/null 2>&1 || useradd --create-home --shell /bin/bash nanocell-ci
# vitest's own summary is not a line CI tools read; print the plain "N passed, N failed" too.
results=$(mktemp)
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" || status=$?
node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed`)' "$results" || true
rm -f "$results"
[ "$sanitized" -eq 0 ] || echo "the native tests failed under the sanitizers" >&2
[ "$status" -ne 0 ] && exit "$status"
exit "$sanitized"
