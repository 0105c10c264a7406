#!/bin/sh
# Makes sure the base image the Dockerfile builds on exists, and prints its
# name. An image already there is used as it is; else Docker Hub's
# debian:bookworm-slim if it can be pulled (within 60 s); else, where no
# container registry is reachable, the same system from Debian's own
# packages: debootstrap's minbase of bookworm from the host's Debian mirror,
# trimmed as the slim image is (no documentation, manual pages or locales,
# now or in later installs), imported as paracorr/debian:bookworm-slim.
#   docker/base.sh            (root for the debootstrap path)
set -eu

hub=debian:bookworm-slim
own=paracorr/debian:bookworm-slim

for image in "$hub" "$own"; do
	if docker image inspect "$image" >/dev/null 2>&1; then
		echo "$image"
		exit 0
	fi
done
if timeout 60 docker pull -q "$hub" >/dev/null 2>&1; then
	echo "$hub"
	exit 0
fi
echo "docker/base.sh: $hub cannot be pulled; building $own with debootstrap" >&2
if [ "$(id -u)" != 0 ]; then
	echo "docker/base.sh: debootstrap needs root" >&2
	exit 1
fi
command -v debootstrap >/dev/null || {
	echo "docker/base.sh: debootstrap is not installed (apt-get install debootstrap)" >&2
	exit 1
}

# the host's mirror, as apt itself reads its sources: the archive that
# serves bookworm main
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 2>/dev/null |
	awk '$2 == "bookworm" && $3 == "main" { print $1; exit }')
mirror=${mirror:-http://deb.debian.org/debian/}

root=$(mktemp -d /tmp/paracorr-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --components=main bookworm "$root" "$mirror" >&2

# what the slim image leaves out, for this install and every later one
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
APT::Install-Recommends "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
	"$mirror" "$mirror" >"$root/etc/apt/sources.list"
find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
rm -rf "$root/usr/share/man"/* "$root/usr/share/info"/* "$root/usr/share/locale"/* \
	"$root/var/cache/apt"/* "$root/var/lib/apt/lists"/* "$root/var/log"/*.log

tar -C "$root" --numeric-owner -c . | docker import \
	-c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	-m "debootstrap --variant=minbase bookworm $mirror" - "$own" >&2
echo "$own"
