#!/usr/bin/env bash
# The long runs of the fault suite (internal/chaos), which CI runs short:
#
#   bench/soak.sh [-quick]
#
#   - racing operators for 60 s (CI: 10 s), usrsvcd built with the race
#     detector;
#   - a program restarted by usrsvcd 1.5 s after each start (its monitor), for 10 minutes
#     (success_seconds 1, so every death is a crash restarted at once):
#     usrsvcd's memory, threads, fds and goroutines before and after;
#   - usrsvcd under RLIMIT_NOFILE 64 with 200 programs (CI: 40 with 30);
#   - the crash storm of 200, the frozen daemon (SIGSTOP 30 s), the starved
#     daemon (20 kills under CPU hogs), SIGTERM during 50 starts, and the disk
#     full run (root), once each as in CI.
#
# It prints every FIGURE line (the figures of RELIABILITY.md) and exits with
# go test's status. Bounded: about 17 minutes, killed at 30 (-quick: the
# same runs at CI length, about 3 minutes). Everything the tests start is
# stopped by them, by pid; the binaries are built in a temp dir and removed.
set -euo pipefail
cd "$(dirname "$0")/.."

cycle=10m race=60s nofile_n=200 nofile_limit=64 kills=20 bound=30m
if [[ ${1:-} == -quick ]]; then
  cycle= race=10s nofile_n=30 nofile_limit=40 kills=5 bound=10m
elif [[ $# -gt 0 ]]; then
  echo "usage: bench/soak.sh [-quick]" >&2
  exit 2
fi

out=$(mktemp /tmp/usrsvc-soak.XXXXXX)
trap 'rm -f "$out"' EXIT

run() { # NAME go-test-args...
  local name=$1
  shift
  echo "soak: $name" >&2
  local rc=0
  timeout --signal=INT "$bound" go test -count=1 -v -timeout "$bound" "$@" ./internal/chaos >"$out" 2>&1 || rc=$?
  grep -h 'FIGURE:' "$out" | sed 's/^ *[a-z_]*_test.go:[0-9]*: FIGURE: /  /' || true
  if [[ $rc != 0 ]]; then
    grep -E -- '^(--- FAIL|FAIL|panic)|Error Trace|Error:|Messages:' "$out" | head -40 >&2
    echo "soak: $name failed (status $rc); full output kept in $out.failed" >&2
    cp "$out" "$out.failed"
  fi
  return $rc
}

status=0
USRSVC_CHAOS_RACE_DURATION=$race run "racing operators ($race, -race)" -race -run '^TestRacingOperators$' || status=1
if [[ -n $cycle ]]; then
  USRSVC_CHAOS_CYCLE_DURATION=$cycle USRSVC_CHAOS_CYCLE_PROGRAMS=1 USRSVC_CHAOS_CYCLE_LIFE=1.5 \
    USRSVC_CHAOS_CYCLE_WINDOW=1 run "a program restarted 1.5 s after each start, for $cycle" -run '^TestRestartCyclesNoLeak$' || status=1
fi
USRSVC_CHAOS_NOFILE_N=$nofile_n USRSVC_CHAOS_NOFILE_LIMIT=$nofile_limit \
  run "RLIMIT_NOFILE $nofile_limit, $nofile_n programs" -run '^TestLowOpenFileLimit$' || status=1
USRSVC_CHAOS_STARVED_KILLS=$kills run "the rest of the suite" \
  -skip '^(TestRacingOperators|TestLowOpenFileLimit)$' || status=1
exit $status
