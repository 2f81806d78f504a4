#!/usr/bin/env bats
# VeNCrypt on the RFB port (services/gfx/tls.c): the test server with
# --tls/--security, real viewers (gvnccapture: TLSVnc, and X509Vnc with
# the certificate pinned as its CA; gnutls-cli for the certificate) and
# raw clients (rfb-tls.py) for what a viewer should not get away with.
load gfx-vnc
load wait

setup() {
	B=${SCM_BUILD:?}
	SRV=$B/libexec/scm-gfx-testserver
	CHK=$B/libexec/scm-gfx-pngcheck
	RT="python3 $BATS_TEST_DIRNAME/rfb-tls.py"
	command -v gvnccapture >/dev/null || { echo "gvnccapture missing (package gvncviewer)"; return 1; }
	command -v jq >/dev/null || { echo "jq missing"; return 1; }
	T=$(mktemp -d)
	mkfifo "$T/out"
}

teardown() {
	[ -n "${HOLD:-}" ] && kill "$HOLD" 2>/dev/null
	[ -n "${ST_PID:-}" ] && kill "$ST_PID" 2>/dev/null
	[ -n "${ST2_PID:-}" ] && kill "$ST2_PID" 2>/dev/null
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	exec 8<&- 2>/dev/null
	rm -rf "$T"
}

has_fingerprint() { [ -n "$(jq -r '.tls_fingerprint // empty' "$T/info.json" 2>/dev/null)" ]; }

start() { # extra args for the test server
	"$SRV" --size 640x400 --info "$T/info.json" --snapshot "$T/snap.png" --cert-out "$T/cert.pem" \
		--client alpha:240x160:1:c03030 --client beta:200x220:3:30a040 "$@" >"$T/out" 2>"$T/err" 3>&- &
	PID=$!
	exec 8<"$T/out"
	read -r -t 20 -u 8 line || { cat "$T/err"; return 1; }
	PORT=${line##*:}
	read -r -t 20 -u 8 _ PASSWORD _ _ || { cat "$T/err"; return 1; }
}

# The capture is the snapshot but for the pointer gtk-vnc has painted in at 0,0.
same_as_snapshot() {
	[ "$("$CHK" diff "$1" "$T/snap.png" 0 32 640 368)" = "0" ]
	[ "$("$CHK" diff "$1" "$T/snap.png" 32 0 608 32)" = "0" ]
}

@test "gfx-tls: preferred offers VeNCrypt (TLSVnc) before VNC authentication; required only VeNCrypt, x509 first" {
	start --tls preferred
	run $RT types "$PORT"
	[ "${lines[0]}" = "types 19 2" ]
	[ "${lines[1]}" = "subtypes 258" ]
	kill "$PID" && wait "$PID" || true
	start --tls required
	run $RT types "$PORT"
	[ "${lines[0]}" = "types 19" ]
	[ "${lines[1]}" = "subtypes 261 258" ]
	kill "$PID" && wait "$PID" || true
	start --security VncAuth,TLSVnc
	run $RT types "$PORT"
	[ "${lines[0]}" = "types 2 19" ]
	# A list the server cannot offer is refused at start, naming the type.
	run "$SRV" --security TLSVnc,Plain --client a:10x10
	[ "$status" -eq 2 ]
	[[ "$output" == *'"Plain" unknown'* ]]
}

@test "gfx-tls: gvnccapture over TLSVnc with the password captures the desktop pixel for pixel" {
	start --tls preferred
	run gvnc_capture "$PORT" "$PASSWORD" "$T/cap.png"
	echo "$output"
	[ "$status" -eq 0 ]
	same_as_snapshot "$T/cap.png"
	# and the wrong password over TLS gets nothing
	run gvnc_capture "$PORT" wrongpw1 "$T/wrong.png"
	[ "$status" -ne 0 ]
	[ ! -e "$T/wrong.png" ]
	# libvncclient (scm-gfx-rfb-input) takes TLSVnc too
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/ok.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/ok.png" "$T/snap.png")" = "0" ]
	SCM_VNC_PASSWORD=wrongpw1 run "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/wrong2.png"
	[ "$status" -ne 0 ]
	[ ! -e "$T/wrong2.png" ]
}

@test "gfx-tls: X509Vnc: viewers that trust the desktop's certificate get in, those that do not are refused" {
	# another desktop's certificate, to trust instead
	"$SRV" --size 64x64 --tls required --cert-out "$T/other.pem" --client a:10x10 >/dev/null 2>&1 &
	other=$!
	wait_until 60 test -s "$T/other.pem"
	kill "$other"
	start --tls required
	[ -s "$T/cert.pem" ]
	! cmp -s "$T/cert.pem" "$T/other.pem"
	# libvncclient with the certificate as its CA; with the other one, no pixels
	SCM_VNC_CA=$T/cert.pem SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/ok.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/ok.png" "$T/snap.png")" = "0" ]
	SCM_VNC_CA=$T/other.pem SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/no.png"
	[ "$status" -ne 0 ]
	[ ! -e "$T/no.png" ]
	# gtk-vnc the same way (it picks X509Vnc, and will not take a
	# certificate it cannot verify)
	[ "$(id -u)" -eq 0 ] || skip "pinning gtk-vnc's CA needs a mount namespace (root)"
	GVNC_CA=$T/cert.pem run gvnc_capture "$PORT" "$PASSWORD" "$T/cap.png"
	echo "$output"
	[ "$status" -eq 0 ]
	same_as_snapshot "$T/cap.png"
	GVNC_CA=$T/other.pem run gvnc_capture "$PORT" "$PASSWORD" "$T/untrusted.png"
	[ "$status" -ne 0 ]
	[ ! -e "$T/untrusted.png" ]
}

@test "gfx-tls: the certificate gnutls-cli is shown has the fingerprint the server reports" {
	command -v gnutls-cli >/dev/null || skip "gnutls-cli missing (gnutls-bin)"
	start --tls required
	kill -USR1 "$PID"
	wait_until 60 has_fingerprint
	fp=$(jq -r .tls_fingerprint "$T/info.json")
	[ ${#fp} -eq 64 ]
	coproc ST { $RT starttls "$PORT" 261; }
	read -r -t 20 -u "${ST[0]}" lp
	timeout 20 gnutls-cli --insecure --print-cert -p "$lp" 127.0.0.1 </dev/null >"$T/cli.txt" 2>&1 || true
	sed -n '/BEGIN CERT/,/END CERT/p' "$T/cli.txt" >"$T/got.pem"
	got=$(certtool --fingerprint --hash sha256 --infile "$T/got.pem")
	[ "$got" = "$fp" ]
	cmp <(certtool -i --infile "$T/got.pem") <(certtool -i --infile "$T/cert.pem")
	# TLS 1.0 and 1.1 are not spoken
	coproc ST2 { $RT starttls "$PORT" 261; }
	read -r -t 20 -u "${ST2[0]}" lp
	run timeout 20 gnutls-cli --insecure --priority NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0 -p "$lp" 127.0.0.1 </dev/null
	[ "$status" -ne 0 ]
	grep -q 'TLS handshake failed' "$T/err"
}

@test "gfx-tls: required refuses a viewer that asks for plain VNC authentication, or speaks RFB 3.3" {
	start --tls required
	run $RT choose "$PORT" 2
	echo "$output"
	[ "$output" = "refused security type 2 was not offered" ]
	run $RT choose "$PORT" 2 003.003
	[[ "$output" == "refused TLS is required"* ]]
	grep -q 'VeNCrypt: 127.0.0.1: security type 2 was not offered' "$T/err"
	# preferred lets both through to VNC authentication
	kill "$PID" && wait "$PID" || true
	start --tls preferred
	run $RT choose "$PORT" 2
	[ "$output" = "challenge" ]
	run $RT choose "$PORT" 2 003.003
	[ "$output" = "type 2" ]
}

@test "gfx-tls: garbage in the VeNCrypt handshake is disconnected with a logged reason; viewers still get in" {
	# TLS only, anonymous: libvncclient has no CA to check X509Vnc with
	start --security TLSVnc
	for kind in version sectype vencrypt-version subtype tls; do
		run $RT garbage "$PORT" "$kind"
		echo "$kind: $output"
		[ "$output" = "closed" ]
	done
	cat "$T/err"
	[ "$(grep -c 'VeNCrypt: 127.0.0.1: ' "$T/err")" -eq 5 ]
	grep -q 'not an RFB ProtocolVersion' "$T/err"
	grep -q 'security type 7 was not offered' "$T/err"
	grep -q 'VeNCrypt version 7.9 (only 0.2 is spoken)' "$T/err"
	grep -q 'VeNCrypt subtype 999 was not offered' "$T/err"
	grep -q 'TLS handshake failed' "$T/err"
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/ok.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/ok.png" "$T/snap.png")" = "0" ]
}

@test "gfx-tls: handshakes that stall (half a message, no TLS ClientHello) hold up no other viewer" {
	start --tls preferred
	# one stuck before its TLS handshake, nine with half a ProtocolVersion:
	# more than the 8 handshakes allowed, so the oldest are closed
	coproc ST { $RT starttls "$PORT" 258; }
	read -r -t 20 -u "${ST[0]}" _
	coproc HOLDER { $RT hold "$PORT" 9; }
	HOLD=$HOLDER_PID
	read -r -t 20 -u "${HOLDER[0]}" held
	[ "$held" = "held" ]
	run gvnc_capture "$PORT" "$PASSWORD" "$T/cap.png"
	[ "$status" -eq 0 ]
	same_as_snapshot "$T/cap.png"
	grep -q 'too many handshakes at once' "$T/err"
}

@test "gfx-tls: on the wire, everything after the VeNCrypt choice is TLS records; without TLS the desktop name shows" {
	start --tls preferred
	coproc RL { $RT relay "$PORT" "$T/tls"; }
	read -r -t 20 -u "${RL[0]}" lp
	run gvnc_capture "$lp" "$PASSWORD" "$T/cap.png"
	[ "$status" -eq 0 ]
	same_as_snapshot "$T/cap.png"
	wait "$RL_PID" || true
	python3 - "$T/tls" <<'PY'
import sys
down = open(sys.argv[1] + ".down", "rb").read()
up = open(sys.argv[1] + ".up", "rb").read()
# version, types [19 2], VeNCrypt 0.2, ok, 1 subtype (258), accepted
head = b"RFB 003.008\n\x02\x13\x02\x00\x02\x00\x01\x00\x00\x01\x02\x01"
assert down.startswith(head), down[:40]
rest = down[len(head):]
# TLS records from here on: type 20-23, version 3.x, length
i = 0
while i < len(rest):
    assert rest[i] in (20, 21, 22, 23) and rest[i + 1] == 3, (i, rest[i:i + 5])
    i += 5 + int.from_bytes(rest[i + 3:i + 5], "big")
assert i == len(rest)
assert b"scm-gfx-testserver" not in down and b"RFB" not in rest
assert up[:12] == b"RFB 003.008\n" and up[12:13] == b"\x13"
PY
	# The same viewer without TLS: the ServerInit's desktop name is in clear.
	kill "$PID" && wait "$PID" || true
	start --tls off
	coproc RL2 { $RT relay "$PORT" "$T/plain"; }
	read -r -t 20 -u "${RL2[0]}" lp
	run gvnc_capture "$lp" "$PASSWORD" "$T/cap2.png"
	[ "$status" -eq 0 ]
	wait "$RL2_PID" || true
	grep -q scm-gfx-testserver "$T/plain.down"
}

@test "gfx-tls: TLSVnc picks anonymous DH with AES-GCM, in the proxy's order, for libvncclient that asks for ECDH (CBC only) first" {
	start --tls preferred
	coproc RL { $RT relay "$PORT" "$T/tls"; }
	read -r -t 20 -u "${RL[0]}" lp
	SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$lp" --capture "$T/ok.png"
	[ "$status" -eq 0 ]
	[ "$("$CHK" diff "$T/ok.png" "$T/snap.png")" = "0" ]
	wait "$RL_PID" || true
	python3 - "$T/tls" <<'PY'
import sys
down = open(sys.argv[1] + ".down", "rb").read()
head = b"RFB 003.008\n\x02\x13\x02\x00\x02\x00\x01\x00\x00\x01\x02\x01"
assert down.startswith(head), down[:40]
rec = down[len(head):]
# the first record is the handshake with the ServerHello: type, length,
# version, random, session id, then the cipher suite
assert rec[0] == 22 and rec[5] == 2, rec[:8]
sid = rec[5 + 4 + 2 + 32]
suite = rec[5 + 4 + 2 + 32 + 1 + sid:][:2]
# TLS_DH_anon_WITH_AES_256_GCM_SHA384 or ..._128_GCM_SHA256
assert suite in (b"\x00\xa7", b"\x00\xa6"), suite.hex()
PY
}

@test "gfx-tls: a configured certificate and key replace the made-up one; a missing or mismatched file is refused at start" {
	command -v certtool >/dev/null || skip "certtool missing (gnutls-bin)"
	printf 'cn = "configured desktop"\nexpiration_days = 2\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nca\n' >"$T/tmpl"
	certtool --generate-privkey --key-type ecdsa --outfile "$T/key.pem" 2>/dev/null
	certtool --generate-self-signed --load-privkey "$T/key.pem" --template "$T/tmpl" --outfile "$T/mine.pem" 2>/dev/null
	start --tls required --tls-cert "$T/mine.pem" --tls-key "$T/key.pem"
	cmp "$T/cert.pem" "$T/mine.pem"
	SCM_VNC_CA=$T/mine.pem SCM_VNC_PASSWORD=$PASSWORD run "$B/libexec/scm-gfx-rfb-input" "$PORT" --capture "$T/ok.png"
	[ "$status" -eq 0 ]
	kill -USR1 "$PID"
	wait_until 60 has_fingerprint
	[ "$(jq -r .tls_fingerprint "$T/info.json")" = "$(certtool --fingerprint --hash sha256 --infile "$T/mine.pem")" ]
	# bad configurations stop the server at start, saying which file
	run "$SRV" --tls required --tls-cert "$T/nope.pem" --tls-key "$T/key.pem" --client a:10x10
	[ "$status" -ne 0 ]
	[[ "$output" == *"$T/nope.pem"* ]]
	certtool --generate-privkey --key-type ecdsa --outfile "$T/key2.pem" 2>/dev/null
	run "$SRV" --tls required --tls-cert "$T/mine.pem" --tls-key "$T/key2.pem" --client a:10x10
	[ "$status" -ne 0 ]
	[[ "$output" == *"mine.pem"* ]]
	run "$SRV" --tls required --tls-cert "$T/mine.pem" --client a:10x10
	[ "$status" -ne 0 ]
	[[ "$output" == *"needs its key"* ]]
}
