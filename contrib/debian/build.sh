#!/usr/bin/env bash
# Builds the wingman .deb: bin/wingman_<version>_amd64.deb, and prints its path.
# Usage: contrib/debian/build.sh [VERSION]   (run from the repository root)
# WINGMAN_DEB_OUT=DIR builds in DIR instead of bin (test/deb does).
# Needs go and dpkg-deb; uses dpkg-buildflags and dpkg-shlibdeps when present.
set -euo pipefail
# The package's files and directories get 0644 and 0755 whatever the caller's umask.
umask 022
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
# A Debian revision makes it a non-native package: its changelog is
# changelog.Debian.gz, and a rebuild of the same source can be -2.
case $version in
*-*) ;;
*) version=$version-1 ;;
esac
upstream=${version%-*}
command -v dpkg-deb >/dev/null || { echo "build.sh: dpkg-deb is missing: apt-get install dpkg" >&2; exit 1; }

outdir=${WINGMAN_DEB_OUT:-bin}
root=$outdir/pkgroot
doc=$root/usr/share/doc/wingman
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root/usr/bin" "$root/etc/wingman" "$root/lib/systemd/system" \
	"$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
	"$root/usr/share/fish/vendor_completions.d" "$root/usr/share/man/man1" "$root/usr/share/man/man5" \
	"$root/usr/share/man/man8" "$root/usr/share/lintian/overrides" "$doc/examples"

# Position-independent executables (ASLR) with Debian's hardening flags for
# the C parts (wingmand links libvirt through cgo).
export CGO_CFLAGS="-O2 -g" CGO_CPPFLAGS="" CGO_LDFLAGS=""
if command -v dpkg-buildflags >/dev/null; then
	CGO_CFLAGS=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)
	CGO_CPPFLAGS=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS)
	CGO_LDFLAGS=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS)
fi
ldflags="-s -w -X main.version=$upstream"
CGO_ENABLED=0 go build -buildmode=pie -trimpath -ldflags "$ldflags" -o "$root/usr/bin/wingman" ./cmd/wingman
go build -buildmode=pie -trimpath -ldflags "$ldflags -linkmode=external" -o "$root/usr/sbin/wingmand" ./cmd/wingmand

install -m 0644 contrib/wingmand.service "$root/lib/systemd/system/wingmand.service"
install -m 0640 contrib/wingman.toml "$root/etc/wingman/wingman.toml"
install -m 0644 contrib/completion/wingman.bash "$root/usr/share/bash-completion/completions/wingman"
install -m 0644 contrib/completion/wingman.zsh "$root/usr/share/zsh/vendor-completions/_wingman"
install -m 0644 contrib/completion/wingman.fish "$root/usr/share/fish/vendor_completions.d/wingman.fish"
gzip -9n -c contrib/man/wingman.1 > "$root/usr/share/man/man1/wingman.1.gz"
gzip -9n -c contrib/man/wingman.toml.5 > "$root/usr/share/man/man5/wingman.toml.5.gz"
gzip -9n -c contrib/man/wingmand.8 > "$root/usr/share/man/man8/wingmand.8.gz"
install -m 0644 contrib/debian/lintian-overrides "$root/usr/share/lintian/overrides/wingman"
install -m 0644 README.md "$doc/README.md"
install -m 0644 contrib/hooks/notify-mail.sh "$doc/examples/notify-mail.sh"
install -m 0644 contrib/wingmand-sandbox.conf "$doc/examples/sandbox.conf"

# changelog.Debian: contrib/debian/changelog, under an entry for this build
# when it is a snapshot the file does not name yet.
{
	if ! head -1 contrib/debian/changelog | grep -qF "wingman ($version)"; then
		when=$(git log -1 --format=%ct 2>/dev/null || date +%s)
		commit=$(git rev-parse --short HEAD 2>/dev/null || echo "an unknown commit")
		maintainer=$(sed -n 's/^Maintainer: //p' contrib/debian/control)
		printf 'wingman (%s) unstable; urgency=medium\n\n  * Snapshot build of %s.\n\n -- %s  %s\n\n' \
			"$version" "$commit" "$maintainer" "$(LC_ALL=C date -u -R -d "@$when")"
	fi
	cat contrib/debian/changelog
} | gzip -9n > "$doc/changelog.Debian.gz"

# license_paragraph FILE prints the License field of a Go module's license
# file: its name, and its text unless Debian ships that license in
# /usr/share/common-licenses (then contrib/debian/copyright points there).
license_paragraph() {
	local f=$1 name
	if [ -z "$f" ] || [ ! -f "$f" ]; then
		echo "build.sh: a linked Go module has no license file ($f): name its license in contrib/debian/copyright" >&2
		return 1
	fi
	if grep -q "Apache License" "$f" && grep -q "Version 2.0" "$f"; then
		name=Apache-2.0
	elif grep -q "Mozilla Public License" "$f" && grep -q "2\.0" "$f"; then
		name=MPL-2.0
	elif grep -q "Permission is hereby granted, free of charge" "$f"; then
		name=Expat
	elif grep -q "Neither the name" "$f"; then
		name=BSD-3-clause
	elif grep -q "Redistribution and use" "$f"; then
		name=BSD-2-clause
	elif grep -q "Permission to use, copy, modify, and/or distribute" "$f"; then
		name=ISC
	else
		name=other
	fi
	echo "License: $name"
	case $name in
	Apache-2.0 | MPL-2.0) ;;
	*) sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/ /' "$f" ;;
	esac
}

# copyright_of FILE prints the Copyright field: the notices in the license
# file, else the module's authors.
copyright_of() {
	local lines
	lines=$(grep -i -m 5 '^[[:space:]]*copyright (c)\|^[[:space:]]*copyright [0-9]' "$2" 2>/dev/null | sed -e 's/^[[:space:]]*//' -e 's/^[Cc]opyright *\((c)\|(C)\)\? *//' -e 's/[[:space:]]*$//') || true
	if [ -z "$lines" ]; then
		lines="The authors of $1"
	fi
	printf 'Copyright: %s\n' "$(printf '%s\n' "$lines" | sed '2,$s/^/ /')"
}

# copyright: Wingman's own, then a paragraph for each Go module linked into
# the binaries (and Go's standard library), before the standalone licenses.
modules=$(mktemp)
trap 'rm -f "$modules"' EXIT
goroot=$(go env GOROOT)
{
	printf 'Files: debian/go/std/*\n'
	copyright_of "the Go standard library" "$goroot/LICENSE"
	printf 'Comment: The Go standard library and runtime, %s.\n' "$(go env GOVERSION)"
	license_paragraph "$goroot/LICENSE"
	go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/wingman ./cmd/wingmand |
		sort -u | while read -r path ver dir; do
		lic=$(ls "$dir"/LICENSE* "$dir"/COPYING* "$dir"/LICENCE* "$dir"/License* "$dir"/license* 2>/dev/null | head -1 || true)
		printf '\nFiles: debian/go/%s/*\n' "$path"
		copyright_of "$path" "$lic"
		printf 'Comment: Go module %s %s.\n' "$path" "$ver"
		license_paragraph "$lic"
	done
} > "$modules"
printf '%s\n' "$(awk -v mods="$modules" 'BEGIN { RS = ""; ORS = "\n\n" }
	/^License:/ && !done { while ((getline p < mods) > 0) print p; done = 1 }
	{ print }' contrib/debian/copyright)" > "$doc/copyright"

# Depends: what dpkg-shlibdeps finds the binaries need (the ${shlibs:Depends}
# of a debhelper build); without it, what Debian 12 has.
shlibs="libc6 (>= 2.34), libvirt0 (>= 9.0)"
if command -v dpkg-shlibdeps >/dev/null; then
	tmp=$(mktemp -d)
	mkdir "$tmp/debian"
	printf 'Source: wingman\n\nPackage: wingman\nArchitecture: amd64\n' > "$tmp/debian/control"
	abs=$(cd "$root" && pwd)
	# wingman (no cgo) needs no library, only the dynamic loader of libc6.
	out=$(cd "$tmp" && dpkg-shlibdeps -O -e"$abs/usr/sbin/wingmand")
	rm -rf "$tmp"
	shlibs=${out#shlibs:Depends=}
fi

sed -e "s|@VERSION@|$version|" -e "s|@SHLIBS_DEPENDS@|$shlibs|" contrib/debian/control > "$root/DEBIAN/control"
install -m 0644 contrib/debian/conffiles "$root/DEBIAN/conffiles"
install -m 0755 contrib/debian/postinst contrib/debian/prerm contrib/debian/postrm "$root/DEBIAN/"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)" >> "$root/DEBIAN/control"
out="$outdir/wingman_${version}_amd64.deb"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
echo "$out"
