# Shared by the scripts that run the release server: where the binaries
# are (honouring CARGO_TARGET_DIR), starting the server on a free port,
# and learning the address it bound from its JSON log. Sourced, not run.
#
#   . scripts/lib/server.sh
#   start_server LOG [server options...]   # sets $server (its pid)
#   wait_for_addr LOG                      # sets $addr (host:port)

# Directory of release binaries.
bin_dir() {
  echo "${CARGO_TARGET_DIR:-target}/release"
}

# Starts the release server with --log-format json and the given options,
# appending its output to LOG; $server is its pid.
start_server() {
  local log=$1
  shift
  "$(bin_dir)/server" --log-format json "$@" >>"$log" 2>&1 &
  server=$!
}

# Waits (up to 10 s) for the "listening" line of the server logging to
# LOG, and sets $addr to the address it bound; exits 2 with the log if the
# server does not come up.
wait_for_addr() {
  local log=$1
  addr=""
  for _ in $(seq 1 100); do
    addr=$(grep -o '"addr":"127\.0\.0\.1:[0-9]*"' "$log" | tail -n1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "the server did not start:" >&2
  cat "$log" >&2
  exit 2
}
