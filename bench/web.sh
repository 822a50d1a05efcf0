#!/usr/bin/env bash
# usrsvcweb with N running programs, next to supervisord serving the same
# N programs in the same run (its peer: supervisorctl talks to both).
#
#   bench/web.sh            (N=200 REPEAT=20 IDLE=60s by default)
#
# Figures:
#   - usrsvcweb's memory after answering a status of N programs: RssAnon
#     (goal < 20 MB), with PSS and VmRSS beside it, and supervisord's with
#     the same N programs;
#   - `supervisorctl status` of N programs through usrsvcweb and through
#     supervisord (median of REPEAT; goal: usrsvcweb faster), and their floor:
#     `supervisorctl version` through usrsvcweb (Python's start-up and one
#     round trip);
#   - getAllProcessInfo of N programs, one curl POST each (median of REPEAT;
#     goal < 30 ms), next to supervisord's, and to the floor of a curl POST of
#     getAPIVersion to usrsvcweb;
#   - usrsvcweb's CPU over IDLE with no client (goal < 0.05 % of a core), and
#     supervisord's over the same window length.
#
# Every figure is printed absolute and as a ratio to its peer or floor,
# measured in this run: this machine's speed moves 2-3x from day to day.
# Needs supervisor and curl (apt-get install -y supervisor curl) and Go.
# Prints Markdown on stdout, progress on stderr. Everything runs from a temp
# directory with unique program titles; only what this script started is
# stopped, by pid or title token, even on failure. WAIT_QUIET=SECONDS first
# waits (that long at most) for the 1-minute load to drop below 0.7.
set -euo pipefail

N=${N:-200}
REPEAT=${REPEAT:-20}
IDLE=${IDLE:-60s}
LOGTAG=web

for tool in supervisord supervisorctl curl; do
  command -v "$tool" >/dev/null || { echo "web: $tool missing: apt-get install -y supervisor curl" >&2; exit 1; }
done

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
tmp=$(mktemp -d /tmp/usrsvc-web.XXXXXX)
run=$(printf '%05d' $((RANDOM % 100000)))
webpid=
us_dir="$tmp/usrsvc"
sup_dir="$tmp/supervisor"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  log "cleanup"
  [[ -n $webpid ]] && kill "$webpid" 2>/dev/null && wait "$webpid" 2>/dev/null
  if [[ -e $us_dir/usrsvc.cfg ]]; then
    HOME="$us_dir" timeout 60 "$bin/usrsvc" --config "$us_dir/usrsvc.cfg" -q -P stop all >/dev/null 2>&1 || true
  fi
  if [[ -e $sup_dir/supervisord.conf ]]; then
    timeout 30 supervisorctl -c "$sup_dir/supervisord.conf" shutdown >/dev/null 2>&1 || true
  fi
  [[ -x ${E2E:-} ]] && "$E2E" -cleanup "$tmp,sleep 8647.$run,sleep 8648.$run" >&2 2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT INT TERM

[[ -n ${WAIT_QUIET:-} ]] && wait_quiet 0.7 "$WAIT_QUIET"
raise_limits "$N"
bench_build
machine_start=$(machine_line)

mem_mb() { # mem_mb PID → "RssAnon PSS VmRSS" in MB (bench/e2e -mem)
  local line
  line=$("$E2E" -mem "$1")
  echo "$(calc "$(field anon_kb "$line") / 1024") $(calc "$(field pss_kb "$line") / 1024") $(calc "$(field rss_kb "$line") / 1024")"
}
timed() { # timed CMD... → "median min max" in ms over REPEAT runs
  local line
  line=$("$E2E" -time "$REPEAT" -- "$@")
  echo "$(field median_ms "$line") $(field min_ms "$line") $(field max_ms "$line")"
}
idle() { # idle PID → "ms pct"
  local line
  line=$("$E2E" -cpu "$1" -dur "$IDLE")
  echo "$(field all_threads_ms "$line") $(field pct "$line")"
}

# ------------------------------------------------------------ usrsvc + usrsvcweb
titles_file "$tmp/us.titles" 8647 "$N"
usrsvc_world "$us_dir" "$tmp/us.titles"
log "starting $N programs with usrsvc -P start all"
HOME="$us_dir" "$bin/usrsvc" --config "$us_dir/usrsvc.cfg" -q -P start all
"$E2E" -waitfor "sleep 8647.$run" -count "$N" -timeout 120s >/dev/null
HOME="$us_dir" "$bin/usrsvcweb" --config "$us_dir/usrsvc.cfg" 2>"$tmp/usrsvcweb.log" &
webpid=$!
sock="$us_dir/state/usrsvcweb.sock"
for _ in $(seq 300); do [[ -S $sock ]] && break; sleep 0.1; done
[[ -S $sock ]] || { log "usrsvcweb did not start: $(cat "$tmp/usrsvcweb.log")"; exit 1; }
us_ctl=(supervisorctl -s "unix://$sock")
n_running=$("${us_ctl[@]}" status | grep -c RUNNING || true)
log "usrsvcweb (pid $webpid) reports $n_running RUNNING"
((n_running == N)) || { log "expected $N RUNNING"; exit 1; }

# ------------------------------------------------------------ supervisord
mkdir -p "$sup_dir/logs"
{
  printf '[supervisord]\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nchildlogdir=%s/logs\nuser=%s\n\n' \
    "$sup_dir" "$sup_dir" "$sup_dir" "$(id -un)"
  printf '[unix_http_server]\nfile=%s/supervisor.sock\n\n[supervisorctl]\nserverurl=unix://%s/supervisor.sock\n\n' "$sup_dir" "$sup_dir"
  printf '[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n'
  for ((i = 1; i <= N; i++)); do
    printf '\n[program:p%04d]\ncommand=/bin/sleep 8648.%s%04d\nstartsecs=1\nstdout_logfile=%s/logs/p%04d.log\nredirect_stderr=true\n' \
      "$i" "$run" "$i" "$sup_dir" "$i"
  done
} >"$sup_dir/supervisord.conf"
log "starting supervisord with $N programs"
supervisord -c "$sup_dir/supervisord.conf"
"$E2E" -waitfor "sleep 8648.$run" -count "$N" -timeout 120s >/dev/null
sup_ctl=(supervisorctl -c "$sup_dir/supervisord.conf")
for _ in $(seq 600); do
  [[ $("${sup_ctl[@]}" status 2>/dev/null | grep -c RUNNING || true) == "$N" ]] && break
  sleep 0.2
done
suppid=$(cat "$sup_dir/supervisord.pid")

# ------------------------------------------------------------ figures
call() { printf '<?xml version="1.0"?><methodCall><methodName>%s</methodName><params></params></methodCall>' "$1"; }
call supervisor.getAllProcessInfo >"$tmp/all.xml"
call supervisor.getAPIVersion >"$tmp/api.xml"

log "status through usrsvcweb / supervisord, $REPEAT times each"
read -r st_us st_us_min st_us_max < <(timed "${us_ctl[@]}" status)
read -r st_sup st_sup_min st_sup_max < <(timed "${sup_ctl[@]}" status)
read -r st_floor _ _ < <(timed "${us_ctl[@]}" version)

log "getAllProcessInfo with curl, $REPEAT times each"
read -r gi_us gi_us_min gi_us_max < <(timed curl -sf --unix-socket "$sock" -o /dev/null --data-binary @"$tmp/all.xml" http://localhost/RPC2)
read -r gi_sup gi_sup_min gi_sup_max < <(timed curl -sf --unix-socket "$sup_dir/supervisor.sock" -o /dev/null --data-binary @"$tmp/all.xml" -H 'Content-Type: text/xml' http://localhost/RPC2)
read -r gi_floor _ _ < <(timed curl -sf --unix-socket "$sock" -o /dev/null --data-binary @"$tmp/api.xml" http://localhost/RPC2)

read -r anon_us pss_us rss_us < <(mem_mb "$webpid")
read -r anon_sup pss_sup rss_sup < <(mem_mb "$suppid")

log "idle CPU over $IDLE: usrsvcweb, then supervisord"
read -r idle_us_ms idle_us_pct < <(idle "$webpid")
read -r idle_sup_ms idle_sup_pct < <(idle "$suppid")

cat <<EOF
### usrsvcweb, $N programs: \`bench/web.sh\`

$machine_start

| figure | usrsvcweb | supervisord (peer) | usrsvcweb ÷ peer | floor | usrsvcweb ÷ floor | goal |
|---|---|---|---|---|---|---|
| \`supervisorctl status\`, $N programs (median of $REPEAT) | $st_us ms (min $st_us_min, max $st_us_max) | $st_sup ms (min $st_sup_min, max $st_sup_max) | $(ratio "$st_us" "$st_sup") | \`supervisorctl version\` through usrsvcweb: $st_floor ms | $(ratio "$st_us" "$st_floor") | faster than supervisord |
| getAllProcessInfo, $N programs (curl POST, median of $REPEAT) | $gi_us ms (min $gi_us_min, max $gi_us_max) | $gi_sup ms (min $gi_sup_min, max $gi_sup_max) | $(ratio "$gi_us" "$gi_sup") | getAPIVersion, same curl: $gi_floor ms | $(ratio "$gi_us" "$gi_floor") | < 30 ms |
| RssAnon after a status of $N programs | $anon_us MB | $anon_sup MB | $(ratio "$anon_us" "$anon_sup") | | | < 20 MB |
| PSS (VmRSS), same moment, for reference | $pss_us MB ($rss_us MB) | $pss_sup MB ($rss_sup MB) | $(ratio "$pss_us" "$pss_sup") ($(ratio "$rss_us" "$rss_sup")) | | | |
| CPU over $IDLE, no client | $idle_us_ms ms ($idle_us_pct % of a core) | $idle_sup_ms ms ($idle_sup_pct %) | $(ratio "$idle_us_ms" "$idle_sup_ms") | | | < 0.05 % |

Finished $(date -u '+%H:%M UTC'); load average then $(cut -d' ' -f1-3 /proc/loadavg).
EOF
