#!/usr/bin/env bash
# End-to-end benchmark of usrsvc/usrsvcd with the real binaries.
#
#   bench/e2e.sh [-idle 60s] [-n 200] [-kills 10] [-sections start,status,...]
#
# Builds usrsvc, usrsvcd and the driver (bench/e2e) into a temp dir, creates a
# temp HOME world, runs the driver (which prints a Markdown table on stdout;
# progress on stderr) and stops everything it started, even on failure:
# usrsvcd stop, usrsvc stop all, then SIGKILL by pid whatever is left with the
# run's unique titles. Bounded: about 2.5 min + the idle window.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/usrsvc-e2e.XXXXXX)
run=$(printf '%05d' $((RANDOM % 100000)))
world="$tmp/home"
bin="$tmp/bin"
mkdir -p "$bin" "$world"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -x "$bin/usrsvcd" ]]; then
    for cfg in "$world"/usrsvc*.cfg; do
      [[ -e "$cfg" ]] || continue
      HOME="$world" timeout 20 "$bin/usrsvcd" --config "$cfg" stop >/dev/null 2>&1 || true
      HOME="$world" timeout 30 "$bin/usrsvc" --config "$cfg" -q -P stop all >/dev/null 2>&1 || true
    done
  fi
  if [[ -x "$bin/e2e" ]]; then
    "$bin/e2e" -cleanup "sleep 86400.$run,sleep 86401.$run,$world" >&2 || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT INT TERM

echo "e2e: building into $bin" >&2
(cd "$repo" && CGO_ENABLED=0 go build -o "$bin/" ./cmd/... && go build -o "$bin/e2e" ./bench/e2e)

# A bounded run: the driver itself tears down on return and on SIGINT/SIGTERM.
timeout --signal=TERM 900 "$bin/e2e" -bin "$bin" -dir "$world" -run "$run" "$@"
