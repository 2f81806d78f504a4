# demo: vdisk: VHDX disks made by scmctl vdisk, served from a container, under policy
# Sourced by examples/demo.sh after the broker demo (scmd is running; $BIN,
# $RUN, step and run are its). The example profiles' /srv/disks becomes a
# scratch directory of the demo's own.
VD=$RUN/disks
LX=$(cd "$BIN/../libexec" && pwd)
mkdir -p "$VD" "$RUN/cfg/profiles"
for p in examples/profiles/vdisk-*.json; do
	sed "s#/srv/disks#$VD#g" "$p" >"$RUN/cfg/profiles/${p##*/}"
done
"$BIN/scmctl" policy reload >/dev/null

echo "a 64 MiB dynamic VHDX with 3 MiB of data, and a differencing child of it:"
run "$BIN/scmctl" vdisk create --size 64M --block-size 1M "$VD/base.vhdx"
head -c 3M /dev/urandom | "$BIN/scmctl" vdisk write --offset 0 "$VD/base.vhdx"
run "$BIN/scmctl" vdisk create --parent "$VD/base.vhdx" "$VD/child.vhdx"
run "$BIN/scmctl" vdisk info "$VD/child.vhdx"
run "$BIN/scmctl" vdisk map "$VD/base.vhdx"
run "$BIN/scmctl" vdisk check "$VD/child.vhdx"
# The provider's container runs as an unprivileged host id (container root
# is the first id of scm's subordinate range, docs/containers.md): give the
# disks to it, as one gives podman's storage to its mapped ids.
subid=$(awk -F: '$1 == "scm" { print $2; exit }' /etc/subuid 2>/dev/null)
subgid=$(awk -F: '$1 == "scm" { print $2; exit }' /etc/subgid 2>/dev/null)
[ "$(id -u)" != 0 ] || chown -R "${subid:-2147483648}:${subgid:-2147483648}" "$VD"

step "vdisk: the provider in its own container, clients in containers with profiles"
run "$BIN/scmctl" service register examples/services/vdisk.json
echo "a reader (profile vdisk-reader) opens the child read-only and reads it through the shared buffer:"
run "$BIN/scmctl" container run --name vd-reader --profile vdisk-reader -- \
	/bin/sh -c "$LX/vdisk-client copy-out $VD/child.vhdx /tmp/out && head -c 3M /tmp/out | sha256sum"
"$BIN/scmctl" vdisk read --offset 0 --length 3M "$VD/base.vhdx" | sha256sum | sed 's/^/  (the base on the host: /; s/$/)/'
echo "the reader asks for read-write, and for a disk outside its directory:"
run "$BIN/scmctl" container run --name vd-reader2 --profile vdisk-reader -- \
	"$LX/vdisk-client" copy-in "$VD/child.vhdx" /dev/null
run "$BIN/scmctl" container run --name vd-reader3 --profile vdisk-reader -- \
	"$LX/vdisk-client" info "$VD/../disks/child.vhdx"
echo "a writer (profile vdisk-writer) writes 1 MiB at the start of the child:"
run "$BIN/scmctl" container run --name vd-writer --profile vdisk-writer -- \
	/bin/sh -c "head -c 1M /dev/urandom >/tmp/in && $LX/vdisk-client copy-in $VD/child.vhdx /tmp/in && echo written"
run "$BIN/scmctl" vdisk map "$VD/child.vhdx"
if command -v qemu-img >/dev/null; then
	echo "qemu-img agrees the base is sound (qemu cannot open differencing VHDX):"
	run qemu-img check "$VD/base.vhdx"
fi
echo "the parent changes behind the child's back: the child is refused, naming both files and GUIDs:"
head -c 4096 /dev/urandom | "$BIN/scmctl" vdisk write --offset 0 "$VD/base.vhdx"
run "$BIN/scmctl" vdisk info "$VD/child.vhdx"
