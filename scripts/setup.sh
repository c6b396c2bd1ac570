#!/usr/bin/env bash
# Idempotent host setup for faultline on Debian 12: the packages the harness drives.
# Uses the host's own apt configuration (no mirror is named here).
set -euo pipefail

packages=(
  qemu-system-x86 busybox-static openssh-server openssh-client cpio rsync xz-utils kmod
  gcc make libc6-dev bc bison flex libelf-dev libssl-dev ccache git util-linux
  chromium shellcheck
  # the mm suite: migration links libnuma statically; kselftest's shell scripts need bash in the guest
  libnuma-dev bash-static
  # kselftest scripts call pgrep and killall --wait, which static busybox lacks
  procps psmisc
  # culprit mails: the tree's get_maintainer.pl is perl; the mail tests parse with python's email package
  perl python3
  # the build sandbox: a tree's make and a --program's compile run under bubblewrap
  bubblewrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
  # apt-get download of the kernel packages needs current package lists.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -1440 2>/dev/null | head -1)" ]; then
    $SUDO apt-get update -qq
  fi
fi

# The openssh-server package starts a host sshd we do not need; faultline only uses its binary.
echo "setup: done"
