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
#   - usrsvcd's memory SETTLE (5) s after it adopted the N programs, and after
#     the mass kill: RssAnon (the figure), PSS and VmRSS beside it;
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
  anon_kb anon_mb pss_kb pss_mb rss_kb rss_mb mem_goal_mb anon_after_kb pss_after_kb rss_after_kb idle_ms idle_pct wakeups reread_ms reread_us masskill_ms masskill_ratio masskill_goal_ms spawn2_ms
  one_plus_spawn_ms)
(IFS=$'\t'; echo "${cols[*]}") >"$tsv"
declare -A V

# one N ---------------------------------------------------------------------
bench_n() {
  measure_world "$bin" "$tmp/w$1" "$1" "$2" "spawn start rss status idle reread masskill"
  row_of "${cols[@]}" >>"$tsv"
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
echo "| N | \`status all\` (median of $REPEAT) | µs per program | ÷ \`usrsvc --version\` | ÷ \`ps -u $user -o pid=,args=\` | \`--json status all\` | usrsvcd RssAnon (after the mass kill) | goal 4 MB + 20 KB·N | PSS (after) | VmRSS (after) | idle CPU over $IDLE (wake-ups) | SIGUSR1 → reread acknowledged | µs per program |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in $NS; do
  echo "| $n | $(get status_ms "$n") ms | $(get status_us "$n") | $(get status_version "$n") ($(get version_ms "$n") ms) | $(get status_ps "$n") ($(get ps_ms "$n") ms) | $(get json_ms "$n") ms | $(get anon_mb "$n") MB ($(calc "$(get anon_after_kb "$n") / 1024") MB) | $(get mem_goal_mb "$n") MB | $(get pss_mb "$n") MB ($(calc "$(get pss_after_kb "$n") / 1024") MB) | $(get rss_mb "$n") MB ($(calc "$(get rss_after_kb "$n") / 1024") MB) | $(get idle_ms "$n") ms = $(get idle_pct "$n") % ($(get wakeups "$n")) | $(get reread_ms "$n") ms | $(get reread_us "$n") |"
done

# charts --------------------------------------------------------------------
ch() { "$bin/chart" -in "$tsv" "$@"; }
ch -out "$OUT/scale-start.svg" -title "usrsvc -P start all (success_seconds = 1)" -y ms \
  -s "start_ms:usrsvc -P start all" -s "one_plus_spawn_ms:1 s + bare spawn of N (floor):dash" -s "start_goal_ms:goal: 1 s + 1.5 × bare spawn:dash"
ch -out "$OUT/scale-start-cpu.svg" -title "CPU per start" -y "µs of CPU per program" \
  -s "start_net_cpu_us:usrsvc: caller + launcher" -s "start_cpu_us:usrsvc: with the program" -s "spawn_cpu_us:bare spawn by a shell (floor):dash"
ch -out "$OUT/scale-status.svg" -title "status all" -y ms \
  -s "status_ms:usrsvc status all" -s "json_ms:usrsvc --json status all" -s "ps_ms:ps -u USER -o pid=,args= (floor):dash" -s "version_ms:usrsvc --version (floor):dash"
ch -out "$OUT/scale-rss.svg" -title "usrsvcd memory" -y MB \
  -s "anon_mb:usrsvcd RssAnon" -s "pss_mb:usrsvcd PSS" -s "rss_mb:usrsvcd VmRSS (reference)" -s "mem_goal_mb:goal (RssAnon): 4 MB + 20 KB per program:dash"
ch -out "$OUT/scale-idle.svg" -title "usrsvcd idle over $IDLE" -y "ms of CPU / wake-ups" \
  -s "idle_ms:CPU ms" -s "wakeups:wake-ups (context switches)"
ch -out "$OUT/scale-reread.svg" -title "SIGUSR1 → acknowledged reread" -y ms -s "reread_ms:reread"
ch -out "$OUT/scale-masskill.svg" -title "all N programs killed at once → the last one back" -y ms \
  -s "masskill_ms:usrsvcd: last one back" -s "spawn2_ms:bare spawn of N (floor):dash" -s "masskill_goal_ms:goal: 2 × bare spawn:dash"
log "data and charts in $OUT"
