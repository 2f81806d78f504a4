# demo: a desktop: xclock and xterm in two containers, composited by the graphics proxy
# Sourced by examples/demo.sh (scmd is running with the example profiles;
# $BIN, $RUN, step and run are its). The desktop stays up until Enter is
# pressed (or for $SCM_DEMO_SECONDS when stdin is not a terminal).
NOVNC_PORT=${SCM_DEMO_NOVNC_PORT:-6080}
OUT=${SCM_DEMO_OUT:-/tmp}/scm-demo-desktop.png
run "$BIN/scmctl" desktop launch examples/desktops/two-apps.json --novnc "$NOVNC_PORT"
sleep 1
run "$BIN/scmctl" container list
run "$BIN/scmctl" desktop screenshot two-apps "$OUT"
echo "a snapshot of the desktop is in $OUT"
"$BIN/scmctl" desktop show two-apps | sed -n 's/.*"caller":"\(.*\)".*/  app container: \1/p'
# The session's secrets: `desktop show` prints them to the desktop's owner.
show=$("$BIN/scmctl" desktop show two-apps)
field() { sed -n 's/^ *"'"$1"'": *"\([^"]*\)".*/\1/p' <<<"$show" | head -n1; }
vnc=$(field vnc) url=$(field novnc) password=$(field password) viewonly=$(field viewonly_password)
vncport=${vnc##*:}
cat <<MSG

  The desktop is live. Each app runs in its own container, as nobody, with
  the profiles base and desktop-app, and the graphics proxy in a third
  (profile gfx-proxy); each window frame has its container's colour, and
  keys reach only the focused app (click a window to focus it).

  Nothing is open without the session's secret: viewers authenticate with
  VNC authentication, and noVNC's websocket is refused unless its URL
  carries the session's token.

    in a browser:  $url
    VNC viewer:    gvncviewer 127.0.0.1:$((vncport - 5900))   (password $password; view only: $viewonly)

MSG
if [ -t 0 ]; then
	read -r -p "press Enter to stop the desktop " _ || true
else
	sleep "${SCM_DEMO_SECONDS:-0}"
fi
run "$BIN/scmctl" desktop stop two-apps
