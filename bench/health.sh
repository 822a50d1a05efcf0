#!/usr/bin/env bash
# Health checks, usrsvcd against monit, in one run. Not for CI: it needs
# monit (apt-get install monit), takes about 12 minutes and starts hundreds
# of processes.
#
#   bench/health.sh         (N=200 IDLE=60s INTERVAL=5 PORTS=N HANGS=5 HANG_INTERVAL=2 by default)
#
# 1. Steady cost of checking N programs every INTERVAL s. N programs
#    /bin/sleep <unique> under four managers in turn: usrsvcd without checks,
#    usrsvcd with an http_check per program ([[Monitor]] http_check,
#    monitor_after = 0, monitor_interval = INTERVAL, check_timeout = 4 (4/5
#    of INTERVAL, usrsvcd's default), check_failures = 3), monit (`set daemon
#    INTERVAL`) with `if failed host 127.0.0.1 port P protocol http request
#    "/health" with timeout 4 seconds for 3 cycles then restart` on each, and monit without
#    it. The endpoints are one server (bench/e2e -httpserve) listening on
#    PORTS ports (default N: one a program, as in life; program i checks port
#    i mod PORTS), answering 200 "ok" and counting the requests and the
#    connections that carried them: requests/s is the check of the benchmark
#    itself (N ÷ INTERVAL expected), connections/s tells who keeps them alive.
#    SETTLE (10) s after all N run, over IDLE: the manager's CPU (Σ
#    /proc/PID/task/*/schedstat, bench/e2e -cpu) and wake-ups, the endpoint
#    server's CPU, then the manager's memory (RssAnon, PSS, VmRSS: bench/e2e
#    -mem), and whether any program was restarted meanwhile (it must not).
#    Ratios: with ÷ without checks (same manager), usrsvcd ÷ monit (same
#    checks), and the CPU of one check (with − without, ÷ checks seen).
#    monit pauses a process's connection tests for its start program's
#    timeout after each start (30 s by default): here that timeout is
#    INTERVAL s (the wrapper returns at once), in both sections.
# 2. Hung → restarted. One program serving its own health endpoint (bench/e2e
#    -httpserve on a free port), checked every HANG_INTERVAL (≥ 2) s with a 1 s
#    timeout, 3 failures in a row → restart; term_to_kill_seconds = 2 for
#    usrsvcd, and for monit a stop program that sends SIGTERM, then SIGKILL
#    after 2 s (a stopped process cannot act on SIGTERM, so both must kill
#    it). bench/e2e -hang sends it SIGSTOP HANGS times, at a random moment of
#    the check cycle, and times until a new process with its title runs; it
#    also checks that the stopped one was killed. Each stop comes 2·I +
#    rand(0, 2·I) s after the process answered (past monit's pause and a
#    successful check by either manager). Under pid 1 (which on this machine
#    reaps orphans late) and under a prompt subreaper (bench/e2e -subreaper),
#    HANG_REAPERS="pid1 subreaper". The floor: the first check after the stop
#    comes I/2 later on average, the third failure (F−1)·I after the first
#    check, each failure needs the T s timeout (the last one at least), and
#    the kill comes K s after SIGTERM: I/2 + (F−1)·I + T + K.
#
# Prints Markdown tables on stdout, progress on stderr. Everything runs from
# a temp dir with unique titles; everything started is stopped and then
# killed by pid (bench/e2e -cleanup), also on failure. WAIT_QUIET=SECONDS
# first waits (that long at most) for the 1-minute load to drop below 1.
set -euo pipefail

N=${N:-200}
IDLE=${IDLE:-60s}
SETTLE=${SETTLE:-10}
INTERVAL=${INTERVAL:-5}
PORTS=${PORTS:-$N}
HANGS=${HANGS:-5}
HANG_INTERVAL=${HANG_INTERVAL:-2}
HANG_REAPERS=${HANG_REAPERS:-"pid1 subreaper"}
# A check's timeout: below the interval (usrsvcd refuses it otherwise; its
# default is 4/5 of an interval under 6.25 s).
STEADY_TIMEOUT=$((INTERVAL * 4 / 5 > 0 ? INTERVAL * 4 / 5 : 1))
HANG_TIMEOUT=1
HANG_FAILURES=3
TERM_TO_KILL=2
LOGTAG=health

for c in monit curl; do
  command -v "$c" >/dev/null || { echo "health: $c missing (apt-get install -y $c)" >&2; exit 1; }
done
[[ $IDLE =~ ^[0-9]+s$ ]] || { echo "health: IDLE must be whole seconds, such as 60s" >&2; exit 2; }
idle_s=${IDLE%s}

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
tmp=$(mktemp -d /tmp/usrsvc-health.XXXXXX)
run=$(printf '%05d' $((RANDOM % 100000)))
# Title tokens: /bin/sleep 866M.<run>NNN, M per world (1 usrsvcd without
# checks, 2 with, 3 monit with, 4 monit without); the hung program's title
# holds hang<U|M><reaper>.<run>, the endpoint server's hsrv.<run>.
tok() { echo "sleep 866$1.$run"; }
srv=""

stop_all() {
  local d
  for d in "$tmp"/usrsvc-*; do
    [[ -e "$d/usrsvc.cfg" ]] || continue
    HOME="$d" timeout 20 "$bin/usrsvcd" --config "$d/usrsvc.cfg" stop >/dev/null 2>&1 || true
    HOME="$d" timeout 60 "$bin/usrsvc" --config "$d/usrsvc.cfg" -q -P stop all >/dev/null 2>&1 || true
  done
  for d in "$tmp"/monit-*; do
    [[ -e "$d/monitrc" ]] || continue
    timeout 10 monit -c "$d/monitrc" quit >/dev/null 2>&1 || true
  done
  if [[ -n $srv ]]; then
    kill "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
  fi
  if [[ -x ${E2E:-} ]]; then
    local toks="$tmp,hsrv.$run" m
    for m in 1 2 3 4; do toks+=",$(tok $m)"; done
    for m in U M; do toks+=",hang${m}pid1.$run,hang${m}subreaper.$run"; done
    "$E2E" -cleanup "$toks" >&2 2>/dev/null || true
  fi
}

trap stop_all_and_exit EXIT INT TERM

[[ -n ${WAIT_QUIET:-} ]] && wait_quiet 1 "$WAIT_QUIET"
raise_limits "$N"
bench_build
machine_start=$(machine_line)
log "machine: $machine_start"

pid_of() { cat "$1" 2>/dev/null; }
us() { local d=$1; shift; HOME="$d" "$bin/$1" --config "$d/usrsvc.cfg" "${@:2}"; }
wait_count() { # wait_count TOKEN N [timeout s]
  "$E2E" -waitfor "$1" -count "$2" -timeout "${3:-120}s" >/dev/null
}

# The endpoints: one server, PORTS ports.
"$E2E" -httpserve 127.0.0.1:0 -ports "$PORTS" -token "hsrv.$run" >"$tmp/srv.out" 2>"$tmp/srv.err" &
srv=$!
for _ in $(seq 100); do [[ -s $tmp/srv.out ]] && break; sleep 0.1; done
IFS=, read -r -a PORT <<<"$(sed -n 's/^HTTPSERVE ports=//p' "$tmp/srv.out")"
((${#PORT[@]} == PORTS)) || { log "the endpoint server did not listen: $(cat "$tmp/srv.err")"; exit 1; }
port_of() { echo "${PORT[$((($1 - 1) % PORTS))]}"; } # program i (from 1) → its port
counts() { curl -s --max-time 10 "http://127.0.0.1:${PORT[0]}/count"; }

# Results: VAL[who,col] a number, DET[who,col] its text.
declare -A VAL DET

# ------------------------------------------------------------------ worlds
# usrsvc_world_checks DIR M CHECKS(0|1): N programs, each with an http_check
# when CHECKS is 1.
usrsvc_world_checks() {
  local d=$1 m=$2 checks=$3 i
  mkdir -p "$d/pids" "$d/logs"
  {
    printf '[Main]\npidfile = %s\nstate_dir = %s\nusrsvcd_stdout = %s\n' "$d/usrsvcd.pid" "$d/state" "$d/usrsvcd.log"
    for ((i = 1; i <= N; i++)); do
      printf '\n[Program:p%03d]\ncommand = /bin/sleep 866%s.%s%03d\npidfile = %s/pids/p%03d.pid\nstdout = %s/logs/p%03d.log\nsuccess_seconds = 1\n' \
        "$i" "$m" "$run" "$i" "$d" "$i" "$d" "$i"
      ((checks == 0)) || printf '\n    [[Monitor]]\n    http_check = http://127.0.0.1:%s/health\n    monitor_after = 0\n    monitor_interval = %s\n    check_timeout = %s\n    check_failures = 3\n' \
        "$(port_of "$i")" "$INTERVAL" "$STEADY_TIMEOUT"
    done
  } >"$d/usrsvc.cfg"
  chmod 600 "$d/usrsvc.cfg"
}

# monit_wrap DIR: monit's start and stop program. stop sends SIGTERM, then
# SIGKILL after TERM_TO_KILL s (as usrsvcd's term_to_kill_seconds), and
# returns once the process has exited (a zombie has).
monit_wrap() {
  cat >"$1/wrap.sh" <<EOF
#!/bin/bash
# wrap.sh start PIDFILE LOG CMD... | stop PIDFILE
alive() { local st; st=\$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/\$1/status" 2>/dev/null); [[ -n \$st && \$st != Z ]]; }
case \$1 in
start) pidfile=\$2 log=\$3; shift 3
       "\$@" </dev/null >>"\$log" 2>&1 &
       echo \$! >"\$pidfile" ;;
stop)  [[ -s \$2 ]] || exit 0
       pid=\$(cat "\$2")
       kill -TERM "\$pid" 2>/dev/null
       for ((i = 0; i < $((TERM_TO_KILL * 50)); i++)); do alive "\$pid" || break; sleep 0.02; done
       if alive "\$pid"; then
         kill -KILL "\$pid" 2>/dev/null
         for ((i = 0; i < 500; i++)); do alive "\$pid" || break; sleep 0.02; done
       fi
       rm -f "\$2" ;;
esac
EOF
  chmod 755 "$1/wrap.sh"
}

monit_head() { # DIR DAEMON-SECONDS
  printf 'set daemon %s\nset pidfile %s/monit.pid\nset idfile %s/monit.id\nset statefile %s/monit.state\nset logfile %s/monit.log\n' "$2" "$1" "$1" "$1" "$1"
  printf 'set httpd unixsocket %s/monit.sock\n  allow bench:pw%s\n' "$1" "$run"
}

# monit_world_checks DIR M CHECKS(0|1)
monit_world_checks() {
  local d=$1 m=$2 checks=$3 i
  mkdir -p "$d/pids" "$d/logs"
  monit_wrap "$d"
  {
    monit_head "$d" "$INTERVAL"
    for ((i = 1; i <= N; i++)); do
      printf '\ncheck process p%03d with pidfile %s/pids/p%03d.pid\n  start program = "%s/wrap.sh start %s/pids/p%03d.pid %s/logs/p%03d.log /bin/sleep 866%s.%s%03d" with timeout %s seconds\n  stop program = "%s/wrap.sh stop %s/pids/p%03d.pid"\n' \
        "$i" "$d" "$i" "$d" "$d" "$i" "$d" "$i" "$m" "$run" "$i" "$INTERVAL" "$d" "$d" "$i"
      ((checks == 0)) || printf '  if failed host 127.0.0.1 port %s protocol http request "/health" with timeout %s seconds for 3 cycles then restart\n' "$(port_of "$i")" "$STEADY_TIMEOUT"
    done
  } >"$d/monitrc"
  chmod 600 "$d/monitrc"
  monit -t -c "$d/monitrc" >/dev/null
}
monit_up() { local i; for i in $(seq 500); do [[ -s $1/monit.pid ]] && [[ -d /proc/$(pid_of "$1/monit.pid") ]] && return 0; sleep 0.02; done; return 1; }

# steady ROW PID M: SETTLE s, then over IDLE the manager's CPU, the endpoint
# server's CPU and the checks it answered; then the manager's memory, and
# whether a program was restarted.
steady() {
  local who=$1 pid=$2 m=$3 line c0 c1 sline mline dline
  sleep "$SETTLE"
  "$E2E" -pids "$(tok "$m")" >"$tmp/before.$m"
  log "$who: CPU over $IDLE"
  c0=$(counts)
  "$E2E" -cpu "$srv" -dur "$IDLE" >"$tmp/srvcpu.$m" &
  local bg=$!
  line=$("$E2E" -cpu "$pid" -dur "$IDLE")
  wait "$bg" || true
  c1=$(counts)
  sline=$(cat "$tmp/srvcpu.$m")
  mline=$("$E2E" -mem "$pid")
  dline=$("$E2E" -diffpids "$tmp/before.$m" -token "$(tok "$m")")
  VAL["$who,cpu"]=$(field all_threads_ms "$line")
  VAL["$who,pct"]=$(field pct "$line")
  VAL["$who,wakeups"]=$(field wakeups "$line")
  VAL["$who,srvcpu"]=$(field all_threads_ms "$sline")
  local r0 r1 k0 k1
  r0=$(field requests "$c0") r1=$(field requests "$c1") k0=$(field conns "$c0") k1=$(field conns "$c1")
  VAL["$who,req"]=$((${r1:-0} - ${r0:-0}))
  VAL["$who,conns"]=$((${k1:-0} - ${k0:-0}))
  VAL["$who,req_s"]=$(calc "${VAL["$who,req"]} / $idle_s")
  VAL["$who,conns_s"]=$(calc "${VAL["$who,conns"]} / $idle_s")
  VAL["$who,anon"]=$(field anon_kb "$mline")
  VAL["$who,pss"]=$(field pss_kb "$mline")
  VAL["$who,rss"]=$(field rss_kb "$mline")
  VAL["$who,threads"]=$(field threads "$mline")
  VAL["$who,restarted"]=$(field restarted "$dline")
  VAL["$who,missing"]=$(field missing "$dline")
  log "$who: $line; endpoint $sline; $c0 → $c1; $mline; $dline"
}

steady_usrsvcd() { # ROW M CHECKS
  local who=$1 m=$2 d="$tmp/usrsvc-$2" pid
  usrsvc_world_checks "$d" "$m" "$3"
  log "$who: usrsvcd start ($N programs)"
  us "$d" usrsvcd start >/dev/null
  wait_count "$(tok "$m")" "$N"
  pid=$(pid_of "$d/usrsvcd.pid")
  steady "$who" "$pid" "$m"
  us "$d" usrsvcd stop >/dev/null
  us "$d" usrsvc -q -P stop all >/dev/null 2>&1 || true
  "$E2E" -cleanup "$(tok "$m")" >/dev/null
}

steady_monit() { # ROW M CHECKS
  local who=$1 m=$2 d="$tmp/monit-$2" pid
  monit_world_checks "$d" "$m" "$3"
  log "$who: monit start ($N programs)"
  monit -c "$d/monitrc" >/dev/null
  monit_up "$d"
  wait_count "$(tok "$m")" "$N" 300
  pid=$(pid_of "$d/monit.pid")
  steady "$who" "$pid" "$m"
  monit -c "$d/monitrc" quit >/dev/null || true
  sleep 1
  "$E2E" -cleanup "$(tok "$m")" >/dev/null
}

U0="usrsvcd, no checks" U1="usrsvcd, http_check" M1="monit, if failed port … protocol http" M0="monit, no checks"
steady_usrsvcd "$U0" 1 0
steady_usrsvcd "$U1" 2 1
steady_monit "$M1" 3 1
steady_monit "$M0" 4 0

# ------------------------------------------------------------------ hung → restarted
# hang_usrsvcd REAPER / hang_monit REAPER: one program serving /health on a
# free port, SIGSTOPped HANGS times (bench/e2e -hang).
hang_title() { echo "$bin/e2e -httpserve 127.0.0.1:$2 -token hang$1.$run"; }
hang_observe() { # ROW TITLE PORT
  local line
  line=$("$E2E" -hang "$2" -url "http://127.0.0.1:$3/health" -repeat "$HANGS" -gap "$((2 * HANG_INTERVAL))s") || log "$1: $line"
  VAL["$1,hang"]=$(field median_ms "$line")
  VAL["$1,hang_min"]=$(field min_ms "$line")
  VAL["$1,hang_max"]=$(field max_ms "$line")
  VAL["$1,hang_n"]=$(field n "$line")
  VAL["$1,gone"]=$(field gone_median_ms "$line")
  VAL["$1,gone_first"]=$(field gone_first "$line")
  VAL["$1,left"]=$(field left_stopped "$line")
  DET["$1,hang"]=$(field all_ms "$line")
  log "$1: $line"
}

hang_usrsvcd() {
  local r=$1 who="usrsvcd ($1)" d="$tmp/usrsvc-hang-$1" port title sub=""
  port=$("$E2E" -freeport)
  title=$(hang_title "U$r" "$port")
  mkdir -p "$d/pids" "$d/logs"
  printf '[Main]\npidfile = %s\nstate_dir = %s\nusrsvcd_stdout = %s\n\n[Program:hang]\ncommand = %s\npidfile = %s/pids/hang.pid\nstdout = %s/logs/hang.log\nsuccess_seconds = 1\nterm_to_kill_seconds = %s\n\n    [[Monitor]]\n    http_check = http://127.0.0.1:%s/health\n    monitor_after = 0\n    monitor_interval = %s\n    check_timeout = %s\n    check_failures = %s\n' \
    "$d/usrsvcd.pid" "$d/state" "$d/usrsvcd.log" "$title" "$d" "$d" "$TERM_TO_KILL" "$port" "$HANG_INTERVAL" "$HANG_TIMEOUT" "$HANG_FAILURES" >"$d/usrsvc.cfg"
  chmod 600 "$d/usrsvc.cfg"
  log "$who: $HANGS hangs"
  if [[ $r == pid1 ]]; then
    us "$d" usrsvcd start >/dev/null
  else
    HOME="$d" "$E2E" -subreaper -- "$bin/usrsvcd" --config "$d/usrsvc.cfg" --foreground start >>"$d/sub.log" 2>&1 &
    sub=$!
  fi
  hang_observe "$who" "$title" "$port"
  us "$d" usrsvcd stop >/dev/null || true
  us "$d" usrsvc -q stop all >/dev/null 2>&1 || true
  if [[ -n $sub ]]; then wait "$sub" || true; fi
  "$E2E" -cleanup "hangU$r.$run" >/dev/null
}

hang_monit() {
  local r=$1 who="monit ($1)" d="$tmp/monit-hang-$1" port title sub=""
  port=$("$E2E" -freeport)
  title=$(hang_title "M$r" "$port")
  mkdir -p "$d/pids" "$d/logs"
  monit_wrap "$d"
  {
    monit_head "$d" "$HANG_INTERVAL"
    printf '\ncheck process hang with pidfile %s/pids/hang.pid\n  start program = "%s/wrap.sh start %s/pids/hang.pid %s/logs/hang.log %s" with timeout %s seconds\n  stop program = "%s/wrap.sh stop %s/pids/hang.pid"\n' \
      "$d" "$d" "$d" "$d" "$title" "$HANG_INTERVAL" "$d" "$d"
    printf '  if failed host 127.0.0.1 port %s protocol http request "/health" with timeout %s seconds for %s cycles then restart\n' \
      "$port" "$HANG_TIMEOUT" "$HANG_FAILURES"
  } >"$d/monitrc"
  chmod 600 "$d/monitrc"
  monit -t -c "$d/monitrc" >/dev/null
  log "$who: $HANGS hangs"
  if [[ $r == pid1 ]]; then
    monit -c "$d/monitrc" >/dev/null
  else
    "$E2E" -subreaper -- monit -I -c "$d/monitrc" >>"$d/sub.log" 2>&1 &
    sub=$!
  fi
  monit_up "$d"
  hang_observe "$who" "$title" "$port"
  monit -c "$d/monitrc" quit >/dev/null 2>&1 || true
  sleep 1
  "$E2E" -cleanup "hangM$r.$run" >/dev/null
  if [[ -n $sub ]]; then wait "$sub" || true; fi
}

for r in $HANG_REAPERS; do
  hang_usrsvcd "$r"
  hang_monit "$r"
done

# ------------------------------------------------------------------ the tables
v() { echo "${VAL["$1,$2"]:-}"; }
mb() { if [[ -n $1 ]]; then calc "$1 / 1024"; fi; }
# per_check ROW BASE: µs of CPU per check seen, over the same manager without checks.
per_check() {
  local a b n
  a=$(v "$1" cpu) b=$(v "$2" cpu) n=$(v "$1" req)
  [[ -n $a && -n $b && -n $n && $n != 0 ]] && calc "($a - $b) * 1000 / $n" || echo "—"
}
expect=$(calc "$N / $INTERVAL")

echo "### Checking $N programs every $INTERVAL s: the manager's CPU over $IDLE"
echo
echo "| Manager | CPU over $IDLE | % of a core | wake-ups | ÷ same manager without checks | ÷ the other manager | CPU per check (over no checks) | checks answered / s (expected $expect) | new connections / s | endpoint server's CPU | programs restarted meanwhile |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for who in "$U0" "$U1" "$M1" "$M0"; do
  case $who in
    "$U0") base="—"; other=$(ratio "$(v "$who" cpu)" "$(v "$M0" cpu)") ow="monit, no checks"; pc="—" ;;
    "$U1") base=$(ratio "$(v "$who" cpu)" "$(v "$U0" cpu)"); other=$(ratio "$(v "$who" cpu)" "$(v "$M1" cpu)") ow="monit, with checks"; pc="$(per_check "$U1" "$U0") µs" ;;
    "$M1") base=$(ratio "$(v "$who" cpu)" "$(v "$M0" cpu)"); other=$(ratio "$(v "$who" cpu)" "$(v "$U1" cpu)") ow="usrsvcd, with checks"; pc="$(per_check "$M1" "$M0") µs" ;;
    "$M0") base="—"; other=$(ratio "$(v "$who" cpu)" "$(v "$U0" cpu)") ow="usrsvcd, no checks"; pc="—" ;;
  esac
  echo "| $who | $(v "$who" cpu) ms | $(v "$who" pct) % | $(v "$who" wakeups) | $base | $other ($ow) | $pc | $(v "$who" req_s) | $(v "$who" conns_s) | $(v "$who" srvcpu) ms | $(v "$who" restarted) of $N ($(v "$who" missing) missing) |"
done
echo
echo "### The same managers' memory, after the CPU window ($((SETTLE + idle_s)) s after all $N ran)"
echo
echo "| Manager | RssAnon | ÷ same manager without checks | ÷ the other manager | PSS | ÷ the other manager | VmRSS | threads |"
echo "|---|---|---|---|---|---|---|---|"
for who in "$U0" "$U1" "$M1" "$M0"; do
  case $who in
    "$U0") base="—"; o=$M0 ;;
    "$U1") base=$(ratio "$(v "$who" anon)" "$(v "$U0" anon)"); o=$M1 ;;
    "$M1") base=$(ratio "$(v "$who" anon)" "$(v "$M0" anon)"); o=$U1 ;;
    "$M0") base="—"; o=$U0 ;;
  esac
  echo "| $who | $(mb "$(v "$who" anon)") MB | $base | $(ratio "$(v "$who" anon)" "$(v "$o" anon)") | $(mb "$(v "$who" pss)") MB | $(ratio "$(v "$who" pss)" "$(v "$o" pss)") | $(mb "$(v "$who" rss)") MB | $(v "$who" threads) |"
done
echo
floor=$(calc "($HANG_INTERVAL / 2 + ($HANG_FAILURES - 1) * $HANG_INTERVAL + $HANG_TIMEOUT + $TERM_TO_KILL) * 1000")
echo "### Hung (SIGSTOP) → a new process runs: check every $HANG_INTERVAL s, timeout $HANG_TIMEOUT s, $HANG_FAILURES failures, SIGKILL $TERM_TO_KILL s after SIGTERM (median of $HANGS)"
echo
echo "| Manager (reaper of orphans) | median | min – max | ÷ floor ($floor ms) | ÷ the other manager | stopped process gone after (median) | gone before the new one ran | stopped process left running | each |"
echo "|---|---|---|---|---|---|---|---|---|"
for r in $HANG_REAPERS; do
  for who in "usrsvcd ($r)" "monit ($r)"; do
    if [[ $who == usrsvcd* ]]; then o="monit ($r)"; else o="usrsvcd ($r)"; fi
    echo "| $who | $(v "$who" hang) ms | $(v "$who" hang_min) – $(v "$who" hang_max) ms | $(ratio "$(v "$who" hang)" "$floor") | $(ratio "$(v "$who" hang)" "$(v "$o" hang)") | $(v "$who" gone) ms | $(v "$who" gone_first) of $(v "$who" hang_n) | $(v "$who" left) | ${DET["$who,hang"]:-—} ms |"
  done
done
echo
echo "Floor: the first check after the stop comes $(calc "$HANG_INTERVAL / 2") s later on average (the stop falls at a random moment of the cycle), the third failing check starts $(( (HANG_FAILURES - 1) * HANG_INTERVAL )) s after the first and times out after $HANG_TIMEOUT s, and SIGKILL follows SIGTERM after $TERM_TO_KILL s (the stopped process cannot act on SIGTERM): I/2 + (F−1)·I + T + K = $floor ms. Both managers were configured alike: usrsvcd \`monitor_interval = $HANG_INTERVAL\`, \`check_timeout = $HANG_TIMEOUT\`, \`check_failures = $HANG_FAILURES\`, \`term_to_kill_seconds = $TERM_TO_KILL\`; monit \`set daemon $HANG_INTERVAL\`, \`if failed … with timeout $HANG_TIMEOUT seconds for $HANG_FAILURES cycles then restart\`, and a stop program sending SIGTERM, then SIGKILL after $TERM_TO_KILL s."
echo
echo "Endpoints: one server (bench/e2e -httpserve) on $PORTS ports, program i checking port i mod $PORTS; the checks counted are the requests it answered over the CPU window, the connections those that carried them."
echo
echo "Machine: $machine_start (at the start; at the end: load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%H:%M UTC')); $(monit -V | head -1)"
