#!/bin/sh
# Installs the Debian 12 packages a group of tasks needs (build, test,
# bench), reading the lists in scripts/deps/GROUP-*.txt, and says what it
# installs. Packages already present are left alone, so this is cheap to
# run before every `make check`.
set -eu
cd "$(dirname "$0")/deps"
want=""
for group in "$@"; do
	for f in "$group"-*.txt; do
		[ -e "$f" ] || continue
		want="$want $(sed 's/#.*//' "$f")"
	done
done
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		case " $missing " in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages:$missing" >&2
	echo "install-deps: run as root, or: apt-get install$missing" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# An old or empty package list finds nothing; refresh it once.
apt-get update -qq >/dev/null || true
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
