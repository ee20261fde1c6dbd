# Sourced by the benchmark scripts that need a Chroma server: one way to start it.
#
# start_chroma WORK: a Chroma server from the chroma venv (scripts/python-env.sh makes it) on a
# free loopback port, its data in WORK/chroma and its log in WORK/chroma.log; waits for its
# heartbeat and sets CHROMA_PORT. On exit it is stopped and WORK removed (this sets the EXIT trap).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_chroma() {
  local work="$1"
  CHROMA_PORT=$(free_port)
  "$KASS_CACHE/chroma-venv/bin/chroma" run --path "$work/chroma" --host 127.0.0.1 \
    --port "$CHROMA_PORT" >"$work/chroma.log" 2>&1 &
  CHROMA_PID=$!
  # shellcheck disable=SC2064 # expand now: the values are this call's
  trap "kill $CHROMA_PID 2>/dev/null; wait $CHROMA_PID 2>/dev/null; rm -rf '$work'" EXIT
  for _ in $(seq 1 100); do
    python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$CHROMA_PORT/api/v2/heartbeat', timeout=1)" \
      2>/dev/null && return 0
    sleep 0.2
  done
  echo "Chroma did not answer on port $CHROMA_PORT; its log:" >&2
  cat "$work/chroma.log" >&2
  return 1
}
