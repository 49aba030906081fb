#!/bin/sh
# The base images of cfgsync's three images, built from Debian's packages alone: no registry, no
# Docker Hub, only a Debian mirror (or its copy inside your network). As root, on a Debian or Ubuntu
# machine with mmdebstrap and buildah:
#
#   deploy/base/python-base.sh localhost/cfgsync-python
#
# makes two images in buildah's storage:
#   NAME:build  Debian bookworm's essential set with python3 and its venv module: a shell, Python, pip
#               through ensurepip. The build stages run here.
#   NAME:run    python3 and the libraries it links, extracted from their packages and nothing else: no
#               shell, no apt, no dpkg, no pip (no ensurepip either). The images run here.
# Both come from the same mirror in one go, so the virtual environment built in the first runs on the
# Python of the second (the same /usr/bin/python3.11). The package lists below are the whole recipe;
# the tests cache the images under a digest of this file.
#
# Settings (environment): DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR
# (default http://deb.debian.org/debian-security; empty: no security updates), DEBIAN_SUITE (bookworm).
set -eu

name=${1:?usage: python-base.sh IMAGE-NAME   (makes IMAGE-NAME:build and IMAGE-NAME:run)}
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR-http://deb.debian.org/debian-security}

# libstdc++6: google-re2, which matches the regular expressions tenants write, is C++ (the build stage
# runs cfgsync once too).
BUILD_PACKAGES=python3-venv,python-is-python3,libstdc++6
RUN_PACKAGES=python3,python-is-python3,libstdc++6

set -- "deb $mirror $suite main" "deb $mirror $suite-updates main"
if [ -n "$security" ]; then
  set -- "$@" "deb $security $suite-security main"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# Documentation goes, except each package's copyright file (the licences travel with the image).
slim="--dpkgopt=path-exclude=/usr/share/doc/* --dpkgopt=path-include=/usr/share/doc/*/copyright
      --dpkgopt=path-exclude=/usr/share/man/* --dpkgopt=path-exclude=/usr/share/info/*
      --dpkgopt=path-exclude=/usr/share/locale/*"

echo "python-base: $name:build from $suite ($BUILD_PACKAGES)" >&2
set -f  # $slim is a list of options whose patterns are dpkg's, not the shell's
# shellcheck disable=SC2086
mmdebstrap --quiet --variant=essential --include="$BUILD_PACKAGES" $slim "$suite" "$work/build" "$@"
set +f
rm -rf "$work"/build/var/lib/apt/lists/* "$work"/build/var/cache/apt/* "$work"/build/var/log/*

echo "python-base: $name:run from $suite ($RUN_PACKAGES, extracted only)" >&2
# "extract" unpacks the packages and their dependencies without running any maintainer script, so
# nothing but their files lands.
set -f
# shellcheck disable=SC2086
mmdebstrap --quiet --variant=extract --include="$RUN_PACKAGES" $slim "$suite" "$work/run" "$@"
set +f
run=$work/run
# The standard library's bytecode, which the build image's packages compile when they are configured:
# the images run with a read-only root filesystem, where Python could not write it later.
chroot "$run" /usr/bin/python3 -m compileall -q -j 0 /usr/lib/python3.11
# dpkg, which python3-minimal pre-depends on, and the package tools' directories go.
rm -rf "$run"/usr/bin/dpkg* "$run"/usr/sbin/dpkg* "$run"/usr/bin/update-alternatives \
  "$run"/usr/lib/dpkg "$run"/usr/share/dpkg "$run"/etc/dpkg "$run"/etc/apt "$run"/var/lib/apt \
  "$run"/var/cache/apt "$run"/var/lib/dpkg "$run"/var/log/* "$run"/usr/share/lintian "$run"/usr/share/bug
# root and the images' user, 65532, by name.
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin\n' \
  >"$run/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$run/etc/group"
chmod 1777 "$run/tmp"
mkdir -p "$run/proc" "$run/sys"
# Container engines provide /dev.
rm -rf "$work"/build/dev/* "$run"/dev/*

path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
for kind in build run; do
  container=$(buildah from scratch)
  buildah add --quiet "$container" "$work/$kind" /
  buildah config --env PATH="$path" --env LANG=C.UTF-8 --cmd '["python3"]' \
    --label org.opencontainers.image.title="python3 ($suite, $kind)" \
    --label org.opencontainers.image.description="Debian $suite's python3 from its packages (deploy/base/python-base.sh)" \
    "$container"
  buildah commit --quiet --rm "$container" "$name:$kind" >/dev/null
  echo "python-base: $name:$kind" >&2
done
