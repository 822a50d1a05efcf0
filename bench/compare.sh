#!/usr/bin/env bash
# Head-to-head of usrsvc/usrsvcd against supervisord and monit on this machine,
# with the same sleep-based programs, every figure next to this machine's
# floors measured in the same run. Not for CI: it needs root to install
# supervisor and monit when they are missing, and takes about 15 minutes
# (10 with LATE=0).
#
#   bench/compare.sh            (N=200 KILLS=10 IDLE=30s REPEAT=10 by default)
#
# Floors, measured in this run right before the figures they judge: a shell
# starting the same N programs bare (wall until the last one exec'd; CPU of
# the shell and the programs in a cgroup), a shell starting 1 program (median
# of 10; the floor of a restart), a bare `usrsvc --version`, and
# `ps -u USER -o pid=,args=` over the N running programs.
#
# Figures, per manager: kill -9 of a managed program → a new non-zombie
# process with its title (1 supervised program; observer polling /proc every
# ≤2 ms; median of KILLS), manager memory with 10 and N programs, SETTLE (5) s
# and LATE (150) s after its start (Go's runtime collects every 2 minutes at
# the latest, and its first background collection leaves more of its own
# structures resident: the late reading is usrsvcd's steady state; the
# 10-program worlds stay up, idle, meanwhile): RssAnon of /proc/PID/status,
# the anonymous memory the process itself holds, is the figure compared; PSS
# (smaps_rollup: its share of the file pages it maps) and VmRSS (every mapped
# page whole) are printed beside it, in a table of their own; idle CPU over
# IDLE with N programs (Σ /proc/PID/task/*/schedstat), status of N programs
# (median of REPEAT), start of N programs (wall, and the manager's CPU per
# program: everything in the manager's cgroup minus the programs' own CPU),
# and manager kill -9 → manager started again (programs restarted,
# duplicates). Detached managers (usrsvcd, monit) are measured under pid 1
# and, for the kill, under a prompt subreaper (bench/e2e -subreaper).
#
# Every figure is printed absolute, ÷ its floor, and ÷ the best of the other
# managers (below 1: ahead). Every manager and program runs from a temp dir
# with unique titles; only what this script started is stopped, killed by pid
# (bench/e2e -cleanup), even on failure. Prints Markdown on stdout, progress
# on stderr. WAIT_QUIET=SECONDS first waits (that long at most) for the
# 1-minute load to drop below 0.7.
set -euo pipefail

IDLE=${IDLE:-30s}
N=${N:-200}
KILLS=${KILLS:-10}
REPEAT=${REPEAT:-10}
# Seconds a manager is left alone after its start before its memory is read,
# and after how long it is read again (0: not again).
SETTLE=${SETTLE:-5}
LATE=${LATE:-150}
LOGTAG=compare

if ! command -v supervisord >/dev/null || ! command -v monit >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "compare: supervisord/monit missing and not root: apt-get install -y supervisor monit" >&2
    exit 1
  fi
  apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y supervisor monit >&2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
tmp=$(mktemp -d /tmp/usrsvc-compare.XXXXXX)
run=$(printf '%05d' $((RANDOM % 100000)))
user=$(id -un)
# Title tokens: /bin/sleep 864MW.<run>NNN, M per manager (1 usrsvc, 2
# supervisord, 3 monit, 9 floors), W per world size.
tok() { echo "sleep 864$1.$run"; }

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
  if [[ -x ${E2E:-} ]]; then
    local toks="$tmp" m
    for m in 10 11 12 20 21 22 30 31 32 90 91; do toks+=",$(tok $m)"; done
    "$E2E" -cleanup "$toks" >&2 2>/dev/null || true
    for d in "$tmp"/cg.*; do [[ -e $d ]] && "$E2E" -cgdel "$(cat "$d")" 2>/dev/null; done
  fi
}

trap stop_all_and_exit EXIT INT TERM

[[ -n ${WAIT_QUIET:-} ]] && wait_quiet 0.7 "$WAIT_QUIET"
raise_limits "$N"
bench_build
machine_start=$(machine_line)

# Results: VAL[row,col] a number (for the ratios), DET[row,col] its text.
declare -A VAL DET FLOOR
set_r() { VAL["$1,$2"]=$3; DET["$1,$2"]=$4; log "$1 / $2: $3 ($4)"; }

kill_detail() { # observer line → details
  local line=$1
  if [[ $line != *median_ms=* ]]; then echo "failed ($line)"; return; fi
  echo "min $(field min_ms "$line"), max $(field max_ms "$line"); killed pid reaped after $(field reap_median_ms "$line" || true) ms; new process's ppid $(field ppid "$line")"
}
set_kill() { # row observer-line
  set_r "$1" kill "$(field median_ms "$2")" "$(kill_detail "$2")"
}
# set_rss ROW COL PID: the memory of PID (bench/e2e -mem): RssAnon is the
# figure, PSS and VmRSS go in the details and in MEM for the memory table.
declare -A MEM
set_rss() {
  local line a p r f t
  line=$("$E2E" -mem "$3")
  a=$(field anon_kb "$line") p=$(field pss_kb "$line") r=$(field rss_kb "$line") f=$(field file_kb "$line") t=$(field threads "$line")
  if [[ -z $a ]]; then set_r "$1" "$2" "" "failed: $line"; return; fi
  MEM["$1,$2"]="$a $p $r $f $t"
  set_r "$1" "$2" "$(calc "$a / 1024")" "PSS $(calc "$p / 1024") MB, VmRSS $(calc "$r / 1024") MB (files $(calc "$f / 1024") MB), $t threads"
}
# late_rss ROW COL PID T0: the memory of PID again, LATE s after T0 (its
# manager's start, in $SECONDS), waiting for what is left of that time.
late_rss() {
  ((LATE > 0)) || return 0
  local left=$((LATE - (SECONDS - $4)))
  ((left > 0)) && log "$1: $left s until the late memory reading" && sleep "$left"
  set_rss "$1" "$2" "$3"
}
set_idle() { # row pid
  local line
  sleep "$SETTLE" # every manager left alone first
  line=$("$E2E" -cpu "$2" -dur "$IDLE")
  set_r "$1" idle "$(field all_threads_ms "$line")" "$(field pct "$line") % of a core, $(field wakeups "$line") wake-ups"
}
set_time() { # row col CMD... → median of REPEAT
  local row=$1 col=$2 line
  shift 2
  if line=$("$E2E" -time "$REPEAT" -- "$@" 2>&1); then
    set_r "$row" "$col" "$(field median_ms "$line")" "min $(field min_ms "$line"), max $(field max_ms "$line")"
  else
    set_r "$row" "$col" "" "failed: $line"
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
mkill_detail() { # line from -diffpids
  echo "$(field restarted "$1") restarted, $(field duplicates "$1") duplicates, $(field missing "$1") missing (of $(field programs "$1"))"
}
# spawn_floor MGR: the bare spawn of N programs, right before MGR's start.
spawn_floor() {
  local line
  titles 90 "$N" >"$tmp/floor.titles"
  line=$("$E2E" -spawn "$tmp/floor.titles" -cg)
  FLOOR["spawn,$1"]=$(field wall_ms "$line")
  FLOOR["spawncpu,$1"]=$(field cpu_per_us "$line")
  log "floor before $1: $line"
}
# ps_floor MGR: ps over the N running programs, right before MGR's status.
ps_floor() {
  FLOOR["ps,$1"]=$(field median_ms "$("$E2E" -time "$REPEAT" -- ps -u "$user" -o pid=,args=)")
  log "floor before $1: ps ${FLOOR["ps,$1"]} ms"
}
# cg_start: a cgroup for a manager's daemon, its path in $cg (kept in a file for the cleanup).
cg_start() {
  cg=$("$E2E" -cgnew 2>/dev/null) || cg=""
  [[ -n $cg ]] && echo "$cg" >"$tmp/cg.$1"
  return 0
}
cg_ms() { [[ -n $cg ]] && field cpu_ms "$("$E2E" -cgread "$cg")"; }
incg() { if [[ -n $cg ]]; then "$E2E" -joincg "$cg" -- "$@"; else "$@"; fi; }
incg_argv() { incg_pre=(); [[ -n $cg ]] && incg_pre=("$E2E" -joincg "$cg" --); return 0; }
# set_startcpu ROW CG_MS_BEFORE CG_MS_AFTER TOKEN: the manager's CPU per
# program for the start: the cgroup's growth minus the programs' own CPU.
set_startcpu() {
  local prog
  if [[ -z $2 || -z $3 ]]; then set_r "$1" startcpu "" "n/a (no cgroup)"; return; fi
  prog=$(field cpu_ms "$("$E2E" -schedsum "$4")")
  set_r "$1" startcpu "$(calc "($3 - $2 - $prog) * 1000 / $N")" "µs per program; the programs' own $(calc "$prog * 1000 / $N") µs not counted"
}

# ------------------------------------------------------------------ usrsvc
us() { local d=$1; shift; HOME="$d" "$bin/$1" --config "$d/usrsvc.cfg" "${@:2}"; }
world_usrsvc() { titles "$2" "$3" >"$1.titles"; usrsvc_world "$1" "$1.titles"; }

bench_usrsvc() {
  local d line pid row="usrsvcd (pid 1)"
  # kill -9 latency, pid 1 and subreaper, 1 program.
  d="$tmp/usrsvc-1"; world_usrsvc "$d" 10 1
  us "$d" usrsvcd start >/dev/null
  # Before each kill, a manual start of the running program ends its crash
  # series: kills seconds apart are a crash loop, which usrsvcd backs off by
  # design (supervisord and monit do not); each kill is then a first crash.
  local reset="HOME=$d $bin/usrsvc --config $d/usrsvc.cfg -q start p0001"
  set_kill "$row" "$("$E2E" -observe "$(titles 10 1)" -kills "$KILLS" -before-kill "$reset")"
  us "$d" usrsvcd stop >/dev/null
  HOME="$d" "$E2E" -subreaper -- "$bin/usrsvcd" --config "$d/usrsvc.cfg" --foreground start >>"$d/sub.log" 2>&1 &
  local sub=$!
  set_kill "usrsvcd (subreaper)" "$("$E2E" -observe "$(titles 10 1)" -kills "$KILLS" -before-kill "$reset")"
  us "$d" usrsvcd stop >/dev/null; us "$d" usrsvc -q stop all >/dev/null 2>&1 || true
  wait "$sub" || true

  # 10 programs, left up (idle) until their late reading.
  local d10="$tmp/usrsvc-10" t10 tN
  world_usrsvc "$d10" 11 10
  us "$d10" usrsvcd start >/dev/null; t10=$SECONDS; wait_count "$(tok 11)" 10; sleep "$SETTLE"
  set_rss "$row" rss10 "$(pid_of "$d10/usrsvcd.pid")"

  # N programs.
  d="$tmp/usrsvc-big"; world_usrsvc "$d" 12 "$N"
  spawn_floor "$row"
  line=$(HOME="$d" "$E2E" -time 1 -cg -progs "$(tok 12)" -- "$bin/usrsvc" --config "$d/usrsvc.cfg" -q -P start all)
  set_r "$row" start "$(field median_ms "$line")" "\`usrsvc -P start all\`, returns after the 1 s success window"
  if [[ $(field cpu_ms "$line") =~ ^[0-9] ]]; then
    set_r "$row" startcpu "$(calc "($(field cpu_ms "$line") - $(field prog_cpu_ms "$line")) * 1000 / $N")" \
      "µs per program (usrsvc + launcher); the programs' own $(calc "$(field prog_cpu_ms "$line") * 1000 / $N") µs not counted"
  else
    set_r "$row" startcpu "" "n/a (no cgroup)"
  fi
  us "$d" usrsvcd start >/dev/null; tN=$SECONDS; sleep "$SETTLE"
  pid=$(pid_of "$d/usrsvcd.pid")
  set_rss "$row" rssN "$pid"
  FLOOR[version]=$(field median_ms "$("$E2E" -time "$REPEAT" -- "$bin/usrsvc" --version)")
  ps_floor "$row"
  us "$d" usrsvc status all >/dev/null 2>&1 || true # warm the page cache
  set_time "$row" status env HOME="$d" "$bin/usrsvc" --config "$d/usrsvc.cfg" status all
  DET["$row,status"]="\`usrsvc status all\`; ${DET["$row,status"]}"
  set_idle "$row" "$pid"
  late_rss "$row" rssNlate "$pid" "$tN"
  late_rss "$row" rss10late "$(pid_of "$d10/usrsvcd.pid")" "$t10"
  us "$d10" usrsvcd stop >/dev/null; us "$d10" usrsvc -q -P stop all >/dev/null 2>&1 || true
  "$E2E" -pids "$(tok 12)" >"$d/before.txt"
  kill -9 "$pid"; wait_gone "$pid"
  us "$d" usrsvcd start >/dev/null; sleep 3
  set_r "$row" mkill "" "$(mkill_detail "$("$E2E" -diffpids "$d/before.txt" -token "$(tok 12)")")"
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
  local d line pid row=supervisord a b
  d="$tmp/supervisor-1"; supervisor_world "$d" 20 1
  supervisord -c "$d/supervisord.conf"; sup_ready "$d"
  set_kill "$row" "$("$E2E" -observe "$(titles 20 1)" -kills "$KILLS")"
  supervisorctl -c "$d/supervisord.conf" shutdown >/dev/null

  local d10="$tmp/supervisor-10" t10 tN
  supervisor_world "$d10" 21 10
  supervisord -c "$d10/supervisord.conf"; t10=$SECONDS; sup_ready "$d10"; sleep "$SETTLE"
  set_rss "$row" rss10 "$(pid_of "$d10/supervisord.pid")"

  d="$tmp/supervisor-big"; supervisor_world "$d" 22 "$N"
  cg_start supervisord
  incg supervisord -c "$d/supervisord.conf"; tN=$SECONDS
  wait_count "$(tok 22)" "$N"
  sup_ready "$d"
  supervisorctl -c "$d/supervisord.conf" stop all >/dev/null
  spawn_floor "$row"
  a=$(cg_ms)
  incg_argv
  line=$("$E2E" -time 1 -- "${incg_pre[@]}" supervisorctl -c "$d/supervisord.conf" start all)
  b=$(cg_ms)
  set_r "$row" start "$(field median_ms "$line")" "\`supervisorctl start all\`, returns once all are RUNNING after startsecs = 1"
  set_startcpu "$row" "$a" "$b" "$(tok 22)"
  sleep "$SETTLE"
  pid=$(pid_of "$d/supervisord.pid")
  set_rss "$row" rssN "$pid"
  ps_floor "$row"
  set_time "$row" status supervisorctl -c "$d/supervisord.conf" status
  DET["$row,status"]="\`supervisorctl status\`; ${DET["$row,status"]}"
  set_idle "$row" "$pid"
  late_rss "$row" rssNlate "$pid" "$tN"
  late_rss "$row" rss10late "$(pid_of "$d10/supervisord.pid")" "$t10"
  supervisorctl -c "$d10/supervisord.conf" shutdown >/dev/null
  "$E2E" -pids "$(tok 22)" >"$d/before.txt"
  kill -9 "$pid"; wait_gone "$pid"
  supervisord -c "$d/supervisord.conf"; sup_ready "$d" || true; sleep 3
  set_r "$row" mkill "" "$(mkill_detail "$("$E2E" -diffpids "$d/before.txt" -token "$(tok 22)")")"
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
  local d line pid row="monit (pid 1)" a b
  d="$tmp/monit-1"; monit_world "$d" 30 1
  monit -c "$d/monitrc" >/dev/null; monit_up "$d"
  set_kill "$row" "$("$E2E" -observe "$(titles 30 1)" -kills "$KILLS")"
  monit -c "$d/monitrc" quit >/dev/null; sleep 1
  "$E2E" -cleanup "$(tok 30)" >/dev/null
  rm -f "$d/monit.pid" "$d/pids/"*
  "$E2E" -subreaper -- monit -c "$d/monitrc" >>"$d/sub.log" 2>&1 &
  local sub=$!
  monit_up "$d"
  set_kill "monit (subreaper)" "$("$E2E" -observe "$(titles 30 1)" -kills "$KILLS")"
  monit -c "$d/monitrc" quit >/dev/null; sleep 1
  "$E2E" -cleanup "$(tok 30)" >/dev/null
  wait "$sub" || true

  local d10="$tmp/monit-10" t10 tN
  monit_world "$d10" 31 10
  monit -c "$d10/monitrc" >/dev/null; t10=$SECONDS; monit_up "$d10"; wait_count "$(tok 31)" 10; sleep "$SETTLE"
  set_rss "$row" rss10 "$(monit_pid "$d10")"

  d="$tmp/monit-big"; monit_world "$d" 32 "$N"
  cg_start monit
  incg monit -c "$d/monitrc" >/dev/null; tN=$SECONDS; monit_up "$d"
  wait_count "$(tok 32)" "$N" 180
  monit -c "$d/monitrc" stop all >/dev/null
  for _ in $(seq 300); do [[ -z $("$E2E" -pids "$(tok 32)") ]] && break; sleep 0.2; done
  spawn_floor "$row"
  a=$(cg_ms)
  incg_argv
  line=$("$E2E" -waitfor "$(tok 32)" -count "$N" -timeout 180s -- "${incg_pre[@]}" monit -c "$d/monitrc" start all) || true
  b=$(cg_ms)
  set_r "$row" start "$(field total_ms "$line")" "\`monit start all\` returns at once; time until all $N processes exist"
  set_startcpu "$row" "$a" "$b" "$(tok 32)"
  sleep "$SETTLE"
  pid=$(monit_pid "$d")
  set_rss "$row" rssN "$pid"
  ps_floor "$row"
  set_time "monit summary" status monit -c "$d/monitrc" summary
  set_time "$row" status monit -c "$d/monitrc" status
  DET["$row,status"]="\`monit status\`; ${DET["$row,status"]}; \`monit summary\` ${VAL["monit summary,status"]} ms (${DET["monit summary,status"]})"
  # The faster of the two is monit's figure.
  if awk "BEGIN { exit !(${VAL["monit summary,status"]:-1e9} < ${VAL["$row,status"]:-1e9}) }"; then
    VAL["$row,status"]=${VAL["monit summary,status"]}
    DET["$row,status"]="\`monit summary\` (the faster); ${DET["monit summary,status"]}; \`monit status\` $(field median_ms "$("$E2E" -time "$REPEAT" -- monit -c "$d/monitrc" status)") ms"
  fi
  set_idle "$row" "$pid"
  late_rss "$row" rssNlate "$pid" "$tN"
  late_rss "$row" rss10late "$(monit_pid "$d10")" "$t10"
  monit -c "$d10/monitrc" quit >/dev/null; sleep 1; "$E2E" -cleanup "$(tok 31)" >/dev/null
  "$E2E" -pids "$(tok 32)" >"$d/before.txt"
  kill -9 "$pid"; wait_gone "$pid"
  monit -c "$d/monitrc" >/dev/null; monit_up "$d"; sleep 3
  set_r "$row" mkill "" "$(mkill_detail "$("$E2E" -diffpids "$d/before.txt" -token "$(tok 32)")")"
  monit -c "$d/monitrc" quit >/dev/null || true; sleep 1; "$E2E" -cleanup "$(tok 32)" >/dev/null
}

log "floors"
titles 91 1 >"$tmp/floor1.titles"
line=$("$E2E" -spawn "$tmp/floor1.titles" -repeat 10)
FLOOR[spawn1]=$(field wall_ms "$line")
log "usrsvc"; bench_usrsvc
log "supervisord"; bench_supervisord
log "monit"; bench_monit

# ------------------------------------------------------------------ the tables
# Peers whose best value a row is divided by (lower is better everywhere).
declare -A PEERS=(
  ["usrsvcd (pid 1)"]="supervisord|monit (pid 1)"
  ["supervisord"]="usrsvcd (pid 1)|monit (pid 1)"
  ["monit (pid 1)"]="usrsvcd (pid 1)|supervisord"
  ["usrsvcd (subreaper)"]="monit (subreaper)|supervisord"
  ["monit (subreaper)"]="usrsvcd (subreaper)|supervisord"
)
best_peer() { # ROW COL → the best value among ROW's peers, and who
  local row=$1 col=$2 p best="" who="" IFS='|'
  for p in ${PEERS[$row]}; do
    local v=${VAL["$p,$col"]:-}
    [[ $v =~ ^[0-9.]+$ ]] || continue
    if [[ -z $best ]] || awk "BEGIN { exit !($v < $best) }"; then best=$v; who=$p; fi
  done
  echo "$best|$who"
}
floor_ratio() { # ROW COL → "X× floor" text
  local row=$1 col=$2 v=${VAL["$1,$2"]:-}
  [[ $v =~ ^[0-9.]+$ ]] || { echo "—"; return; }
  case $col in
    kill) echo "$(ratio "$v" "${FLOOR[spawn1]}")× a bare spawn of 1 (${FLOOR[spawn1]} ms)" ;;
    status) echo "$(ratio "$v" "${FLOOR[version]}")× \`usrsvc --version\` (${FLOOR[version]} ms); $(ratio "$v" "${FLOOR["ps,$row"]}")× ps (${FLOOR["ps,$row"]} ms)" ;;
    start)
      local f=${FLOOR["spawn,$row"]:-}
      if [[ $row == monit* ]]; then
        echo "$(ratio "$v" "$f")× the bare spawn of $N ($f ms)"
      else
        echo "$(ratio "$(calc "$v - 1000")" "$f")× the bare spawn of $N ($f ms), after the 1 s window"
      fi ;;
    startcpu) echo "$(ratio "$v" "${FLOOR["spawncpu,$row"]}")× a bare spawn's CPU (${FLOOR["spawncpu,$row"]} µs, shell + program)" ;;
    *) echo "—" ;;
  esac
}
unit() { case $1 in kill | status | start) echo ms ;; idle) echo "ms CPU" ;; startcpu) echo "µs CPU" ;; esac; }

# Memory has a table of its own, below.
titles_of=(
  "kill:kill -9 of a managed program → new process (median of $KILLS, 1 program)"
  "start:start of $N programs"
  "startcpu:CPU per program of the start of $N (manager side)"
  "status:status of $N programs (median of $REPEAT)"
  "idle:idle CPU over $IDLE, $N programs"
  "mkill:manager kill -9 → started again, $N programs"
)
echo "| Figure | Manager | Result | ÷ floor (this run) | ÷ best other manager | Details |"
echo "|---|---|---|---|---|---|"
for t in "${titles_of[@]}"; do
  col=${t%%:*}; name=${t#*:}
  for row in "usrsvcd (pid 1)" "usrsvcd (subreaper)" "supervisord" "monit (pid 1)" "monit (subreaper)"; do
    [[ -n ${VAL["$row,$col"]+x} || -n ${DET["$row,$col"]+x} ]] || continue
    v=${VAL["$row,$col"]:-}
    res="—"
    [[ -n $v ]] && res="$v $(unit "$col")"
    bp=$(best_peer "$row" "$col"); bv=${bp%%|*}; bw=${bp#*|}
    peer="—"
    [[ -n $v && -n $bv ]] && peer="$(ratio "$v" "$bv") ($bw)"
    [[ $col == mkill ]] && res=${DET["$row,$col"]} && DET["$row,$col"]=""
    echo "| $name | $row | $res | $(floor_ratio "$row" "$col") | $peer | ${DET["$row,$col"]:-} |"
  done
done
echo
echo "Memory, $SETTLE s and $LATE s after each manager's start (RssAnon of /proc/PID/status is the figure; PSS of /proc/PID/smaps_rollup and VmRSS for reference):"
echo
echo "| Manager | programs | RssAnon at $SETTLE s | ÷ best other manager | RssAnon at $LATE s | ÷ best other manager | PSS at $SETTLE s / $LATE s | VmRSS at $SETTLE s / $LATE s | files mapped (RssFile) | threads |"
echo "|---|---|---|---|---|---|---|---|---|---|"
mem_best() { # ROW COL → the lowest RssAnon among ROW's peers, and who: "value|who"
  local p best="" who="" v peers
  IFS='|' read -r -a peers <<<"${PEERS[$1]}"
  for p in "${peers[@]}"; do
    [[ -n ${MEM["$p,$2"]:-} ]] || continue
    v=${MEM["$p,$2"]%% *}
    if [[ -z $best ]] || ((v < best)); then best=$v who=$p; fi
  done
  echo "$best|$who"
}
mem_cell() { # KB → "N.N MB", or "—"
  if [[ -n $1 ]]; then echo "$(calc "$1 / 1024") MB"; else echo "—"; fi
}
for col in rss10 rssN; do
  n=10; [[ $col == rssN ]] && n=$N
  for row in "usrsvcd (pid 1)" "supervisord" "monit (pid 1)"; do
    [[ -n ${MEM["$row,$col"]:-} ]] || continue
    read -r a p r f t <<<"${MEM["$row,$col"]}"
    la="" lp="" lr="" lt="" late_cells="— | —"
    if [[ -n ${MEM["$row,${col}late"]:-} ]]; then
      read -r la lp lr _ lt <<<"${MEM["$row,${col}late"]}"
      bl=$(mem_best "$row" "${col}late")
      late_cells="$(mem_cell "$la") | $(ratio "$la" "${bl%%|*}") (${bl#*|})"
    fi
    b=$(mem_best "$row" "$col")
    echo "| $row | $n | $(mem_cell "$a") | $(ratio "$a" "${b%%|*}") (${b#*|}) | $late_cells | $(mem_cell "$p") / $(mem_cell "$lp") | $(mem_cell "$r") / $(mem_cell "$lr") | $(mem_cell "$f") | $t / ${lt:-—} |"
  done
done
echo
echo "Floors (this run): a shell starting 1 program bare ${FLOOR[spawn1]} ms (median of 10); starting $N bare ${FLOOR["spawn,usrsvcd (pid 1)"]:-?} / ${FLOOR["spawn,supervisord"]:-?} / ${FLOOR["spawn,monit (pid 1)"]:-?} ms (right before usrsvc's / supervisord's / monit's start; CPU ${FLOOR["spawncpu,usrsvcd (pid 1)"]:-?} / ${FLOOR["spawncpu,supervisord"]:-?} / ${FLOOR["spawncpu,monit (pid 1)"]:-?} µs a program); \`usrsvc --version\` ${FLOOR[version]} ms; \`ps -u $user -o pid=,args=\` over the $N programs ${FLOOR["ps,usrsvcd (pid 1)"]:-?} / ${FLOOR["ps,supervisord"]:-?} / ${FLOOR["ps,monit (pid 1)"]:-?} ms (median of $REPEAT)."
echo
echo "Machine: $machine_start (at the start; at the end: load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%H:%M UTC')); supervisord $(supervisord --version 2>&1 | head -1), $(monit -V | head -1)"
