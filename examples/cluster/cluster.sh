#!/bin/sh
# cluster.sh: two containers, nodea and nodeb, share one VHDX and fence
# each other with persistent reservations (examples/cluster/README.md).
#   cluster.sh DISK
# scmd must be running with the cluster-node profile installed and the
# vdisk service registered; DISK lies below the profile's directory
# (/srv/disks/cluster). $SCMCTL and $VDISK_CLIENT name the programs
# (default: scmctl, and vdisk-client beside scm-vdisk-provider in scmd's
# libexec directory). Exits non-zero when anything does not go as shown.
set -eu
DISK=${1:?usage: cluster.sh DISK}
SCMCTL=${SCMCTL:-scmctl}
VDISK_CLIENT=${VDISK_CLIENT:-vdisk-client}
DIR=$(dirname "$DISK")
WERO=write-exclusive-registrants-only

# node NAME PR-COMMAND...: vdisk-client pr in a container named NAME with
# the cluster-node profile. The container's endpoint label (its name) and
# uid are its registrant identity, so every run of one name is one node
# (the exited container is removed, so that the name can run again).
node() {
	name=$1
	shift
	rc=0
	"$SCMCTL" container run --name "$name" --profile cluster-node --bind "$DIR" \
		${SCM_IDL_PATH:+--env SCM_IDL_PATH="$SCM_IDL_PATH" --bind "$SCM_IDL_PATH"} \
		${CLUSTER_ENV:+--env "$CLUSTER_ENV"} -- "$VDISK_CLIENT" pr "$DISK" "$@" || rc=$?
	"$SCMCTL" container rm "$name" >/dev/null
	return $rc
}
say() { printf '\n== %s\n' "$*"; }

say "both nodes register a key; nodea reserves $WERO"
node nodea register 0 0xa1
node nodeb register 0 0xb1
node nodea reserve 0xa1 $WERO
node nodea read

say "registrants only: both write (nodea 0xaa at 0, nodeb 0xbb at 1 MiB)"
node nodea write 0 4096 0xaa
node nodeb write 1048576 4096 0xbb

say "nodea decides nodeb is dead and fences it: preempt and abort key 0xb1"
node nodea preempt-abort 0xa1 0xb1 $WERO
node nodea read

say "nodeb tries to write 0xcc at 0: reservation conflict"
if node nodeb write 0 4096 0xcc; then
	echo "cluster.sh: nodeb's write was not refused" >&2
	exit 1
fi
say "nodeb may still read (a write-exclusive type); the block holds nodea's 0xaa"
out=$(node nodeb check 0 4096)
echo "$out"
[ "$out" = "byte 0xaa" ] || { echo "cluster.sh: the fenced write landed" >&2; exit 1; }
say "fenced: nodeb is out until it registers again"
