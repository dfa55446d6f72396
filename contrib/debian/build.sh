#!/usr/bin/env bash
# Builds the wingman .deb: bin/wingman_<version>_amd64.deb.
# Usage: contrib/debian/build.sh [VERSION]   (run from the repository root)
set -euo pipefail
if [ $# -ge 1 ]; then
	version=$1
elif tag=$(git describe --tags --abbrev=0 2>/dev/null); then
	version=${tag#v}
elif stamp=$(git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S 2>/dev/null); then
	# The commit time comes first so that a later build is a newer package:
	# hashes alone do not sort, and apt refuses a "downgrade" on upgrade.
	version=0.1.0~git$stamp.$(git rev-parse --short HEAD)
else
	version=0.1.0~dev
fi
root=bin/pkgroot
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root/usr/bin" "$root/etc/wingman" "$root/lib/systemd/system" \
	"$root/usr/share/bash-completion/completions" "$root/usr/share/man/man1" "$root/usr/share/doc/wingman/examples"
ldflags="-s -w -X main.version=$version"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$root/usr/bin/wingman" ./cmd/wingman
go build -trimpath -ldflags "$ldflags" -o "$root/usr/sbin/wingmand" ./cmd/wingmand
install -m 0644 contrib/wingmand.service "$root/lib/systemd/system/wingmand.service"
install -m 0640 contrib/wingman.toml "$root/etc/wingman/wingman.toml"
install -m 0644 contrib/completion/wingman.bash "$root/usr/share/bash-completion/completions/wingman"
gzip -9n -c contrib/man/wingman.1 > "$root/usr/share/man/man1/wingman.1.gz"
install -m 0644 README.md "$root/usr/share/doc/wingman/README.md"
install -m 0755 contrib/hooks/notify-mail.sh "$root/usr/share/doc/wingman/examples/notify-mail.sh"
sed "s/@VERSION@/$version/" contrib/debian/control > "$root/DEBIAN/control"
install -m 0644 contrib/debian/conffiles "$root/DEBIAN/conffiles"
install -m 0755 contrib/debian/postinst contrib/debian/prerm "$root/DEBIAN/"
echo "Installed-Size: $(du -sk "$root" | cut -f1)" >> "$root/DEBIAN/control"
out="bin/wingman_${version}_amd64.deb"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
echo "$out"
