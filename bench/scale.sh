#!/usr/bin/env bash
# The cost curve of usrsvc/usrsvcd from 10 to 2 000 programs, with the real
# binaries in a temp HOME. Not for CI (minutes of wall time, thousands of
# processes).
#
#   bench/scale.sh                  NS="10 200 1000 2000" IDLE=30s REPEAT=10 OUT=<temp dir>
#
# Per N, with N programs /bin/sleep <unique> (success_seconds = 1):
#   - floors measured in the same run, just before the figure they judge:
#     a shell starting the same N programs bare (bench/e2e -spawn: wall until
#     the last one exec'd, and CPU of the shell + programs in a cgroup), a bare
#     `usrsvc --version`, `ps -u USER -o pid=,args=` over the running programs;
#   - `usrsvc -P start all`: wall, (wall − the 1 s success window) ÷ the spawn
#     floor, and CPU per start (caller + launchers, programs excluded) ÷ the
#     CPU of a bare spawn;
#   - `usrsvc status all` and `--json status all` (median of REPEAT), µs per
#     program, ÷ `usrsvc --version`, ÷ ps;
#   - usrsvcd VmRSS 2 s after it adopted the N programs (and after the mass kill);
#   - usrsvcd idle CPU and wake-ups (context switches) over IDLE;
#   - SIGUSR1 → acknowledged reread (median of 5), µs per program;
#   - all N programs SIGKILLed at once → the last one back (exec seen through
#     the kernel's process events), ÷ the spawn floor.
# Prints Markdown tables on stdout (progress on stderr) and writes the data
# (scale.tsv) and one SVG chart per figure into OUT.
#
# Raises the soft (as root also the hard) open-files and process limits for
# the largest N and says so on stderr. Everything it starts is stopped and
# killed by pid at the end, also on failure.
set -euo pipefail

NS=${NS:-"10 200 1000 2000"}
IDLE=${IDLE:-30s}
REPEAT=${REPEAT:-10}
LOGTAG=scale

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
tmp=$(mktemp -d /tmp/usrsvc-scale.XXXXXX)
run=$(printf '%05d' $((RANDOM % 100000)))
OUT=${OUT:-$tmp/out}
mkdir -p "$OUT"
user=$(id -un)

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local d
  for d in "$tmp"/w*; do
    [[ -e "$d/usrsvc.cfg" ]] || continue
    HOME="$d" timeout 30 "$bin/usrsvcd" --config "$d/usrsvc.cfg" stop >/dev/null 2>&1 || true
    HOME="$d" timeout 120 "$bin/usrsvc" --config "$d/usrsvc.cfg" -q -P stop all >/dev/null 2>&1 || true
  done
  local toks="$tmp" k
  for k in 0 1 2 3 4 5 6 7 8 9; do toks+=",sleep 8650$k.$run,sleep 8651$k.$run"; done
  [[ -x ${E2E:-} ]] && "$E2E" -cleanup "$toks" >&2 2>/dev/null || true
  # Keep the results when OUT is inside tmp.
  if [[ $OUT == "$tmp"/* ]]; then
    local keep
    keep=$(mktemp -d /tmp/usrsvc-scale-out.XXXXXX)
    cp -r "$OUT"/. "$keep"/ && log "results in $keep"
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT INT TERM

max_n=0
for n in $NS; do ((n > max_n)) && max_n=$n; done
raise_limits "$max_n"
bench_build
log "machine: $(machine_line)"

tsv="$OUT/scale.tsv"
cols=(n spawn_ms spawn_cpu_us start_ms start_ratio start_goal_ms start_cpu_us start_net_cpu_us start_cpu_ratio
  version_ms ps_ms status_ms status_us json_ms status_version status_ps
  rss_kb rss_mb rss_goal_mb rss_after_kb idle_ms idle_pct wakeups reread_ms reread_us masskill_ms masskill_ratio masskill_goal_ms spawn2_ms
  one_plus_spawn_ms)
(IFS=$'\t'; echo "${cols[*]}") >"$tsv"
declare -A V

# one N ---------------------------------------------------------------------
bench_n() {
  local n=$1 k=$2 d line pid us_cfg
  d="$tmp/w$n"; mkdir -p "$d"
  local tok="sleep 8650$k.$run" ftok="sleep 8651$k.$run"
  titles_file "$d/titles" "8650$k" "$n"
  titles_file "$d/floor" "8651$k" "$n"
  usrsvc_world "$d" "$d/titles"
  us_cfg=(--config "$d/usrsvc.cfg")
  V=([n]=$n)

  log "N=$n: spawn floor"
  line=$("$E2E" -spawn "$d/floor" -cg)
  V[spawn_ms]=$(field wall_ms "$line"); V[spawn_cpu_us]=$(field cpu_per_us "$line")

  log "N=$n: usrsvc -P start all"
  line=$(HOME="$d" "$E2E" -time 1 -cg -progs "$tok" -- "$bin/usrsvc" "${us_cfg[@]}" -q -P start all)
  V[start_ms]=$(field median_ms "$line")
  local cpu prog
  cpu=$(field cpu_ms "$line"); prog=$(field prog_cpu_ms "$line")
  if [[ -n $cpu && $cpu != n/a ]]; then
    V[start_cpu_us]=$(calc "$cpu * 1000 / $n")
    V[start_net_cpu_us]=$(calc "($cpu - $prog) * 1000 / $n")
    V[start_cpu_ratio]=$(ratio "${V[start_net_cpu_us]}" "${V[spawn_cpu_us]}")
  fi
  V[start_ratio]=$(ratio "$(calc "${V[start_ms]} - 1000")" "${V[spawn_ms]}")
  V[start_goal_ms]=$(calc "1000 + 1.5 * ${V[spawn_ms]}")
  V[one_plus_spawn_ms]=$(calc "1000 + ${V[spawn_ms]}")
  local running
  running=$("$E2E" -pids "$tok" | wc -l)
  ((running == n)) || { log "N=$n: only $running of $n running after start all"; return 1; }

  log "N=$n: usrsvcd start (adopts $n)"
  HOME="$d" "$bin/usrsvcd" "${us_cfg[@]}" start >/dev/null
  pid=$(cat "$d/usrsvcd.pid")
  sleep 2
  line=$("$E2E" -mem "$pid")
  V[rss_kb]=$(field rss_kb "$line")
  V[rss_mb]=$(calc "${V[rss_kb]} / 1024")
  V[rss_goal_mb]=$(calc "4 + $n * 20 / 1024")

  log "N=$n: status all, floors"
  V[version_ms]=$(field median_ms "$("$E2E" -time "$REPEAT" -- "$bin/usrsvc" --version)")
  V[ps_ms]=$(field median_ms "$("$E2E" -time "$REPEAT" -- ps -u "$user" -o pid=,args=)")
  HOME="$d" "$bin/usrsvc" "${us_cfg[@]}" status all >/dev/null # warm the page cache
  V[status_ms]=$(field median_ms "$(HOME="$d" "$E2E" -time "$REPEAT" -- "$bin/usrsvc" "${us_cfg[@]}" status all)")
  V[json_ms]=$(field median_ms "$(HOME="$d" "$E2E" -time "$REPEAT" -- "$bin/usrsvc" "${us_cfg[@]}" --json status all)")
  V[status_us]=$(calc "${V[status_ms]} * 1000 / $n")
  V[status_version]=$(ratio "${V[status_ms]}" "${V[version_ms]}")
  V[status_ps]=$(ratio "${V[status_ms]}" "${V[ps_ms]}")

  log "N=$n: idle CPU over $IDLE"
  line=$("$E2E" -cpu "$pid" -dur "$IDLE")
  V[idle_ms]=$(field all_threads_ms "$line"); V[idle_pct]=$(field pct "$line"); V[wakeups]=$(field wakeups "$line")

  log "N=$n: SIGUSR1 → acknowledged reread"
  line=$("$E2E" -reread "$pid" -ack "$d/state/usrsvcd.reload.json" -repeat 5)
  V[reread_ms]=$(field median_ms "$line")
  V[reread_us]=$(calc "${V[reread_ms]} * 1000 / $n")

  log "N=$n: all $n killed at once"
  # The floor again, right before: the machine's state of this moment.
  line=$("$E2E" -spawn "$d/floor")
  V[spawn2_ms]=$(field wall_ms "$line")
  line=$("$E2E" -masskill "$d/titles" -timeout 300s) || log "N=$n: mass kill: $line"
  V[masskill_ms]=$(field last_ms "$line")
  V[masskill_ratio]=$(ratio "${V[masskill_ms]}" "${V[spawn2_ms]}")
  V[masskill_goal_ms]=$(calc "2 * ${V[spawn2_ms]}")
  sleep 3
  V[rss_after_kb]=$(field rss_kb "$("$E2E" -mem "$pid")")

  log "N=$n: stopping"
  HOME="$d" "$bin/usrsvcd" "${us_cfg[@]}" stop >/dev/null
  HOME="$d" "$bin/usrsvc" "${us_cfg[@]}" -q -P stop all >/dev/null || true
  "$E2E" -cleanup "$tok,$ftok" >/dev/null
  local row=() c
  for c in "${cols[@]}"; do row+=("${V[$c]:-}"); done
  (IFS=$'\t'; echo "${row[*]}") >>"$tsv"
}

k=0
for n in $NS; do
  bench_n "$n" "$k"
  k=$((k + 1))
done

# tables --------------------------------------------------------------------
get() { awk -F'\t' -v c="$1" -v n="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) col = i; next } $1 == n { print $col }' "$tsv"; }
echo "Machine: $(machine_line)"
echo
echo "| N | bare spawn of N (floor) | \`usrsvc -P start all\` | (start − 1 s) ÷ spawn | CPU per start: caller + launcher | ÷ CPU of a bare spawn | all N killed → last back | ÷ spawn |"
echo "|---|---|---|---|---|---|---|---|"
for n in $NS; do
  echo "| $n | $(get spawn_ms "$n") ms ($(get spawn_cpu_us "$n") µs CPU each) | $(get start_ms "$n") ms | $(get start_ratio "$n") | $(get start_net_cpu_us "$n") µs ($(get start_cpu_us "$n") with the program) | $(get start_cpu_ratio "$n") | $(get masskill_ms "$n") ms (spawn then $(get spawn2_ms "$n") ms) | $(get masskill_ratio "$n") |"
done
echo
echo "| N | \`status all\` (median of $REPEAT) | µs per program | ÷ \`usrsvc --version\` | ÷ \`ps -u $user -o pid=,args=\` | \`--json status all\` | usrsvcd VmRSS (after the mass kill) | goal 4 MB + 20 KB·N | idle CPU over $IDLE (wake-ups) | SIGUSR1 → reread acknowledged | µs per program |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in $NS; do
  echo "| $n | $(get status_ms "$n") ms | $(get status_us "$n") | $(get status_version "$n") ($(get version_ms "$n") ms) | $(get status_ps "$n") ($(get ps_ms "$n") ms) | $(get json_ms "$n") ms | $(calc "$(get rss_kb "$n") / 1024") MB ($(calc "$(get rss_after_kb "$n") / 1024") MB) | $(get rss_goal_mb "$n") MB | $(get idle_ms "$n") ms = $(get idle_pct "$n") % ($(get wakeups "$n")) | $(get reread_ms "$n") ms | $(get reread_us "$n") |"
done

# charts --------------------------------------------------------------------
ch() { "$bin/chart" -in "$tsv" "$@"; }
ch -out "$OUT/scale-start.svg" -title "usrsvc -P start all (success_seconds = 1)" -y ms \
  -s "start_ms:usrsvc -P start all" -s "one_plus_spawn_ms:1 s + bare spawn of N (floor):dash" -s "start_goal_ms:goal: 1 s + 1.5 × bare spawn:dash"
ch -out "$OUT/scale-start-cpu.svg" -title "CPU per start" -y "µs of CPU per program" \
  -s "start_net_cpu_us:usrsvc: caller + launcher" -s "start_cpu_us:usrsvc: with the program" -s "spawn_cpu_us:bare spawn by a shell (floor):dash"
ch -out "$OUT/scale-status.svg" -title "status all" -y ms \
  -s "status_ms:usrsvc status all" -s "json_ms:usrsvc --json status all" -s "ps_ms:ps -u USER -o pid=,args= (floor):dash" -s "version_ms:usrsvc --version (floor):dash"
ch -out "$OUT/scale-rss.svg" -title "usrsvcd resident memory" -y MB \
  -s "rss_mb:usrsvcd VmRSS" -s "rss_goal_mb:goal: 4 MB + 20 KB per program:dash"
ch -out "$OUT/scale-idle.svg" -title "usrsvcd idle over $IDLE" -y "ms of CPU / wake-ups" \
  -s "idle_ms:CPU ms" -s "wakeups:wake-ups (context switches)"
ch -out "$OUT/scale-reread.svg" -title "SIGUSR1 → acknowledged reread" -y ms -s "reread_ms:reread"
ch -out "$OUT/scale-masskill.svg" -title "all N programs killed at once → the last one back" -y ms \
  -s "masskill_ms:usrsvcd: last one back" -s "spawn2_ms:bare spawn of N (floor):dash" -s "masskill_goal_ms:goal: 2 × bare spawn:dash"
log "data and charts in $OUT"
