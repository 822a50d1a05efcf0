#!/usr/bin/env bash
# Head-to-head of usrsvc/usrsvcd against supervisord and monit on this machine,
# with the same sleep-based programs. Not for CI: it needs root to install
# supervisor and monit when they are missing, and takes about 8 minutes.
#
#   bench/compare.sh            (IDLE=30s N=200 KILLS=10 by default)
#
# Measures, per manager: kill -9 of a managed program → a new non-zombie
# process with its title (1 supervised program; observer polling /proc every
# ≤2 ms; median of KILLS), manager VmRSS with 10 and N programs, idle CPU over
# IDLE with N programs (Σ /proc/PID/task/*/schedstat), `status` of N programs
# (median of 10), start of N programs, and manager kill -9 → manager started
# again (programs restarted, duplicates). Detached managers (usrsvcd, monit)
# are measured under pid 1 and under a prompt subreaper (bench/e2e -subreaper).
#
# Every manager and program runs from a temp dir with unique titles; only what
# this script started is stopped, killed by pid (bench/e2e -cleanup), even on
# failure. Prints a Markdown table on stdout, progress on stderr.
set -euo pipefail

IDLE=${IDLE:-30s}
N=${N:-200}
KILLS=${KILLS:-10}

if ! command -v supervisord >/dev/null || ! command -v monit >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "compare: supervisord/monit missing and not root: apt-get install -y supervisor monit" >&2
    exit 1
  fi
  apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y supervisor monit >&2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/usrsvc-compare.XXXXXX)
run=$(printf '%05d' $((RANDOM % 100000)))
bin="$tmp/bin"
mkdir -p "$bin"
# Title tokens: /bin/sleep 8641M.<run>NNN, M per manager and world size.
tok() { echo "sleep 864$1.$run"; }

log() { echo "compare: $*" >&2; }

stop_all() {
  local d
  for d in "$tmp"/usrsvc-*; do
    [[ -e "$d/usrsvc.cfg" ]] || continue
    HOME="$d" timeout 20 "$bin/usrsvcd" --config "$d/usrsvc.cfg" stop >/dev/null 2>&1 || true
    HOME="$d" timeout 30 "$bin/usrsvc" --config "$d/usrsvc.cfg" -q -P stop all >/dev/null 2>&1 || true
  done
  for d in "$tmp"/supervisor-*; do
    [[ -e "$d/supervisord.conf" ]] || continue
    timeout 30 supervisorctl -c "$d/supervisord.conf" shutdown >/dev/null 2>&1 || true
  done
  for d in "$tmp"/monit-*; do
    [[ -e "$d/monitrc" ]] || continue
    timeout 10 monit -c "$d/monitrc" quit >/dev/null 2>&1 || true
  done
  if [[ -x "$bin/e2e" ]]; then
    local toks="$tmp" m
    for m in 10 11 12 20 21 22 30 31 32; do toks+=",$(tok $m)"; done
    "$bin/e2e" -cleanup "$toks" >&2 2>/dev/null || true
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  log "cleanup"
  stop_all
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT INT TERM

log "building into $bin"
(cd "$repo" && go build -o "$bin/" ./cmd/... && go build -o "$bin/e2e" ./bench/e2e)
E2E="$bin/e2e"

# Results, by manager row and column.
declare -A R
cols=(kill rss10 rssN idle status start mkill)
set_r() { R["$1,$2"]=$3; log "$1 / $2: $3"; }

field() { # field NAME LINE → value of NAME=... in LINE
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"
}
kill_summary() { # observer line → "median X ms (min .. max ..)"
  local line=$1
  if [[ $line != *median_ms=* ]]; then echo "failed ($line)"; return; fi
  local reap
  reap=$(field reap_median_ms "$line")
  echo "$(field median_ms "$line") ms (min $(field min_ms "$line"), max $(field max_ms "$line")); killed pid reaped after ${reap:-never} ms; new process's ppid $(field ppid "$line")"
}
rss_of() { awk '/^VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$1/status"; }
cpu_of() {
  local line
  line=$("$E2E" -cpu "$1" -dur "$IDLE")
  echo "$(field pct "$line") % ($(field all_threads_ms "$line") ms CPU in $IDLE)"
}
time_of() { # time_of CMD... → median of 10
  local line
  if line=$("$E2E" -time 10 -- "$@" 2>&1); then
    echo "$(field median_ms "$line") ms (min $(field min_ms "$line"), max $(field max_ms "$line"))"
  else
    echo "failed: $line"
  fi
}
pid_of() { cat "$1" 2>/dev/null; }
wait_gone() { local i; for i in $(seq 500); do [[ -d /proc/$1 ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null || return 0; sleep 0.01; done; return 1; }
wait_count() { # wait_count TOKEN N [timeout s]
  "$E2E" -waitfor "$1" -count "$2" -timeout "${3:-120}s" >/dev/null
}
titles() { # titles MGRNUM COUNT
  local i
  for i in $(seq 1 "$2"); do printf '/bin/sleep 864%s.%s%03d\n' "$1" "$run" "$i"; done
}
mkill_result() { # line from -diffpids
  echo "$(field restarted "$1") restarted, $(field duplicates "$1") duplicates, $(field missing "$1") missing (of $(field programs "$1"))"
}

# ------------------------------------------------------------------ usrsvc
usrsvc_world() { # usrsvc_world DIR MGRNUM COUNT
  local d=$1 i=0 t
  mkdir -p "$d/pids" "$d/logs"
  {
    printf '[Main]\npidfile = %s\nstate_dir = %s\nusrsvcd_stdout = %s\n' "$d/usrsvcd.pid" "$d/state" "$d/usrsvcd.log"
    while read -r t; do
      i=$((i + 1))
      printf '\n[Program:p%03d]\ncommand = %s\npidfile = %s/pids/p%03d.pid\nstdout = %s/logs/p%03d.log\nsuccess_seconds = 1\n' "$i" "$t" "$d" "$i" "$d" "$i"
    done < <(titles "$2" "$3")
  } >"$d/usrsvc.cfg"
  chmod 600 "$d/usrsvc.cfg"
}
us() { local d=$1; shift; HOME="$d" "$bin/$1" --config "$d/usrsvc.cfg" "${@:2}"; }

bench_usrsvc() {
  local d line pid
  # kill -9 latency, pid 1 and subreaper, 1 program.
  d="$tmp/usrsvc-1"; usrsvc_world "$d" 10 1
  us "$d" usrsvcd start >/dev/null
  line=$("$E2E" -observe "$(titles 10 1)" -kills "$KILLS")
  set_r "usrsvcd (pid 1)" kill "$(kill_summary "$line")"
  us "$d" usrsvcd stop >/dev/null
  HOME="$d" "$E2E" -subreaper -- "$bin/usrsvcd" --config "$d/usrsvc.cfg" --foreground start >>"$d/sub.log" 2>&1 &
  local sub=$!
  line=$("$E2E" -observe "$(titles 10 1)" -kills "$KILLS")
  set_r "usrsvcd (subreaper)" kill "$(kill_summary "$line")"
  us "$d" usrsvcd stop >/dev/null; us "$d" usrsvc -q stop all >/dev/null 2>&1 || true
  wait "$sub" || true

  # 10 programs.
  d="$tmp/usrsvc-10"; usrsvc_world "$d" 11 10
  us "$d" usrsvcd start >/dev/null; wait_count "$(tok 11)" 10; sleep 2
  set_r "usrsvcd (pid 1)" rss10 "$(rss_of "$(pid_of "$d/usrsvcd.pid")")"
  us "$d" usrsvcd stop >/dev/null; us "$d" usrsvc -q -P stop all >/dev/null 2>&1 || true

  # N programs.
  d="$tmp/usrsvc-$N"; usrsvc_world "$d" 12 "$N"
  line=$("$E2E" -time 1 -- env HOME="$d" "$bin/usrsvc" --config "$d/usrsvc.cfg" -q -P start all)
  set_r "usrsvcd (pid 1)" start "$(field median_ms "$line") ms (\`usrsvc -P start all\`, returns after the 1 s success window)"
  us "$d" usrsvcd start >/dev/null; sleep 2
  pid=$(pid_of "$d/usrsvcd.pid")
  set_r "usrsvcd (pid 1)" rssN "$(rss_of "$pid")"
  set_r "usrsvcd (pid 1)" status "$(time_of env HOME="$d" "$bin/usrsvc" --config "$d/usrsvc.cfg" status all)"
  set_r "usrsvcd (pid 1)" idle "$(cpu_of "$pid")"
  "$E2E" -pids "$(tok 12)" >"$d/before.txt"
  kill -9 "$pid"; wait_gone "$pid"
  us "$d" usrsvcd start >/dev/null; sleep 3
  set_r "usrsvcd (pid 1)" mkill "$(mkill_result "$("$E2E" -diffpids "$d/before.txt" -token "$(tok 12)")")"
  us "$d" usrsvcd stop >/dev/null; us "$d" usrsvc -q -P stop all >/dev/null 2>&1 || true
}

# ------------------------------------------------------------------ supervisord
supervisor_world() { # DIR MGRNUM COUNT
  local d=$1 i=0 t
  mkdir -p "$d/logs"
  {
    printf '[supervisord]\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nchildlogdir=%s/logs\nuser=root\n\n' "$d" "$d" "$d"
    printf '[unix_http_server]\nfile=%s/supervisor.sock\n\n[supervisorctl]\nserverurl=unix://%s/supervisor.sock\n\n' "$d" "$d"
    printf '[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n'
    while read -r t; do
      i=$((i + 1))
      printf '\n[program:p%03d]\ncommand=%s\nstartsecs=1\nautostart=true\nautorestart=true\nstdout_logfile=%s/logs/p%03d.log\nredirect_stderr=true\n' "$i" "$t" "$d" "$i"
    done < <(titles "$2" "$3")
  } >"$d/supervisord.conf"
}
sup_ready() { # wait until supervisorctl reports every program RUNNING (60 s)
  local i
  for i in $(seq 600); do
    supervisorctl -c "$1/supervisord.conf" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

bench_supervisord() {
  local d line pid row=supervisord
  d="$tmp/supervisor-1"; supervisor_world "$d" 20 1
  supervisord -c "$d/supervisord.conf"; sup_ready "$d"
  line=$("$E2E" -observe "$(titles 20 1)" -kills "$KILLS")
  set_r "$row" kill "$(kill_summary "$line")"
  supervisorctl -c "$d/supervisord.conf" shutdown >/dev/null

  d="$tmp/supervisor-10"; supervisor_world "$d" 21 10
  supervisord -c "$d/supervisord.conf"; sup_ready "$d"; sleep 2
  set_r "$row" rss10 "$(rss_of "$(pid_of "$d/supervisord.pid")")"
  supervisorctl -c "$d/supervisord.conf" shutdown >/dev/null

  d="$tmp/supervisor-$N"; supervisor_world "$d" 22 "$N"
  line=$("$E2E" -waitfor "$(tok 22)" -count "$N" -- supervisord -c "$d/supervisord.conf")
  sup_ready "$d"
  supervisorctl -c "$d/supervisord.conf" stop all >/dev/null
  line=$("$E2E" -time 1 -- supervisorctl -c "$d/supervisord.conf" start all)
  set_r "$row" start "$(field median_ms "$line") ms (\`supervisorctl start all\`, returns once all are RUNNING after startsecs = 1)"
  sleep 2
  pid=$(pid_of "$d/supervisord.pid")
  set_r "$row" rssN "$(rss_of "$pid")"
  set_r "$row" status "$(time_of supervisorctl -c "$d/supervisord.conf" status)"
  set_r "$row" idle "$(cpu_of "$pid")"
  "$E2E" -pids "$(tok 22)" >"$d/before.txt"
  kill -9 "$pid"; wait_gone "$pid"
  supervisord -c "$d/supervisord.conf"; sup_ready "$d" || true; sleep 3
  set_r "$row" mkill "$(mkill_result "$("$E2E" -diffpids "$d/before.txt" -token "$(tok 22)")")"
  supervisorctl -c "$d/supervisord.conf" shutdown >/dev/null || true
}

# ------------------------------------------------------------------ monit
monit_world() { # DIR MGRNUM COUNT
  local d=$1 i=0 t
  mkdir -p "$d/pids" "$d/logs"
  cat >"$d/wrap.sh" <<'EOF'
#!/bin/bash
# wrap.sh start PIDFILE LOG CMD... | stop PIDFILE: monit's start/stop program.
case $1 in
start) pidfile=$2 log=$3; shift 3
       "$@" </dev/null >>"$log" 2>&1 &
       echo $! >"$pidfile" ;;
stop)  [[ -s $2 ]] && kill "$(cat "$2")" 2>/dev/null; rm -f "$2" ;;
esac
EOF
  chmod 755 "$d/wrap.sh"
  {
    printf 'set daemon 1\nset pidfile %s/monit.pid\nset idfile %s/monit.id\nset statefile %s/monit.state\nset logfile %s/monit.log\n' "$d" "$d" "$d" "$d"
    printf 'set httpd unixsocket %s/monit.sock\n  allow bench:pw%s\n' "$d" "$run"
    while read -r t; do
      i=$((i + 1))
      printf '\ncheck process p%03d with pidfile %s/pids/p%03d.pid\n  start program = "%s/wrap.sh start %s/pids/p%03d.pid %s/logs/p%03d.log %s"\n  stop program = "%s/wrap.sh stop %s/pids/p%03d.pid"\n' \
        "$i" "$d" "$i" "$d" "$d" "$i" "$d" "$i" "$t" "$d" "$d" "$i"
    done < <(titles "$2" "$3")
  } >"$d/monitrc"
  chmod 600 "$d/monitrc"
}
monit_pid() { pid_of "$1/monit.pid"; }
monit_up() { local i; for i in $(seq 500); do [[ -s $1/monit.pid ]] && [[ -d /proc/$(monit_pid "$1") ]] && return 0; sleep 0.02; done; return 1; }

bench_monit() {
  local d line pid row
  d="$tmp/monit-1"; monit_world "$d" 30 1
  monit -c "$d/monitrc" >/dev/null; monit_up "$d"
  line=$("$E2E" -observe "$(titles 30 1)" -kills "$KILLS")
  set_r "monit (pid 1)" kill "$(kill_summary "$line")"
  monit -c "$d/monitrc" quit >/dev/null; sleep 1
  "$E2E" -cleanup "$(tok 30)" >/dev/null
  rm -f "$d/monit.pid" "$d/pids/"*
  "$E2E" -subreaper -- monit -c "$d/monitrc" >>"$d/sub.log" 2>&1 &
  local sub=$!
  monit_up "$d"
  line=$("$E2E" -observe "$(titles 30 1)" -kills "$KILLS")
  set_r "monit (subreaper)" kill "$(kill_summary "$line")"
  monit -c "$d/monitrc" quit >/dev/null; sleep 1
  "$E2E" -cleanup "$(tok 30)" >/dev/null
  wait "$sub" || true

  row="monit (pid 1)"
  d="$tmp/monit-10"; monit_world "$d" 31 10
  monit -c "$d/monitrc" >/dev/null; monit_up "$d"; wait_count "$(tok 31)" 10; sleep 2
  set_r "$row" rss10 "$(rss_of "$(monit_pid "$d")")"
  monit -c "$d/monitrc" quit >/dev/null; sleep 1; "$E2E" -cleanup "$(tok 31)" >/dev/null

  d="$tmp/monit-$N"; monit_world "$d" 32 "$N"
  monit -c "$d/monitrc" >/dev/null; monit_up "$d"
  wait_count "$(tok 32)" "$N" 180
  monit -c "$d/monitrc" stop all >/dev/null
  for _ in $(seq 300); do [[ -z $("$E2E" -pids "$(tok 32)") ]] && break; sleep 0.2; done
  line=$("$E2E" -waitfor "$(tok 32)" -count "$N" -timeout 180s -- monit -c "$d/monitrc" start all) || true
  set_r "$row" start "$(field total_ms "$line") ms (\`monit start all\` returns at once; time until all $N processes exist)"
  sleep 3
  pid=$(monit_pid "$d")
  set_r "$row" rssN "$(rss_of "$pid")"
  set_r "$row" status "$(time_of monit -c "$d/monitrc" summary)"
  set_r "$row" idle "$(cpu_of "$pid")"
  "$E2E" -pids "$(tok 32)" >"$d/before.txt"
  kill -9 "$pid"; wait_gone "$pid"
  monit -c "$d/monitrc" >/dev/null; monit_up "$d"; sleep 3
  set_r "$row" mkill "$(mkill_result "$("$E2E" -diffpids "$d/before.txt" -token "$(tok 32)")")"
  monit -c "$d/monitrc" quit >/dev/null || true; sleep 1; "$E2E" -cleanup "$(tok 32)" >/dev/null
}

log "usrsvc"; bench_usrsvc
log "supervisord"; bench_supervisord
log "monit"; bench_monit

echo "| Manager | kill -9 → new process (median of $KILLS, 1 program) | VmRSS, 10 programs | VmRSS, $N programs | idle CPU over $IDLE, $N programs | status of $N (median of 10) | start of $N | manager kill -9 → started again, $N programs |"
echo "|---|---|---|---|---|---|---|---|"
for row in "usrsvcd (pid 1)" "usrsvcd (subreaper)" "supervisord" "monit (pid 1)" "monit (subreaper)"; do
  line="| $row"
  for c in "${cols[@]}"; do line+=" | ${R["$row,$c"]:-—}"; done
  echo "$line |"
done
echo
echo "Machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo), kernel $(uname -r); $(supervisord --version 2>&1 | head -1 | sed 's/^/supervisord /'), $(monit -V | head -1)"
