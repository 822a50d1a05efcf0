# Shell helpers shared by bench/compare.sh and bench/scale.sh (sourced, not run).
#
# The caller sets: repo (the repository root), tmp (its temp dir), run (a
# 5-digit run id making titles unique), and for measure_world REPEAT and
# IDLE. bench_build sets bin and E2E.

log() { echo "${LOGTAG:-bench}: $*" >&2; }

# bench_build builds usrsvc, usrsvcd (static, as installed: see the README),
# the driver and the chart writer into $tmp/bin.
bench_build() {
  bin="$tmp/bin"
  mkdir -p "$bin"
  log "building into $bin"
  (cd "$repo" && CGO_ENABLED=0 go build -o "$bin/" ./cmd/... && go build -o "$bin/e2e" ./bench/e2e && go build -o "$bin/chart" ./bench/chart)
  E2E="$bin/e2e"
}

# field NAME LINE → the value of NAME=... in LINE ("" when absent).
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# calc EXPR → awk arithmetic, rounded to 3 significant digits or so
# (1234, 12.3, 1.23, 0.012); "" when EXPR does not compute.
calc() {
  awk "BEGIN { v = $1; a = v < 0 ? -v : v
    if (a >= 100 || v == int(v)) printf \"%.0f\", v; else if (a >= 10) printf \"%.1f\", v; else if (a >= 0.1) printf \"%.2f\", v; else printf \"%.3g\", v }" 2>/dev/null || true
}

# ratio A B → A/B with 2 decimals, or "—" when either is missing or B is 0.
ratio() {
  if [[ -z $1 || -z $2 || $1 == n/a || $2 == n/a ]] || awk "BEGIN { exit !($2 == 0) }"; then echo "—"; return; fi
  awk "BEGIN { printf \"%.2f\", $1 / $2 }"
}

# raise_limits N: enough open files and processes for N programs, their
# launchers and the tools (about 6 fds and 8 tasks a program). Only the soft
# limits are raised, up to the hard ones; as root the hard ones too.
raise_limits() {
  local n=$1 want_fd want_proc
  want_fd=$((n * 6 + 4096))
  want_proc=$((n * 8 + 4096))
  if [[ $(ulimit -Hn) != unlimited && $(ulimit -Hn) -lt $want_fd ]]; then
    ulimit -Hn "$want_fd" 2>/dev/null || log "cannot raise the hard open-files limit to $want_fd (it is $(ulimit -Hn))"
  fi
  if [[ $(ulimit -Sn) != unlimited && $(ulimit -Sn) -lt $want_fd ]]; then
    ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
    log "raised the open-files limit (ulimit -n) to $(ulimit -Sn) for $n programs"
  fi
  if [[ $(ulimit -Hu) != unlimited && $(ulimit -Hu) -lt $want_proc ]]; then
    ulimit -Hu "$want_proc" 2>/dev/null || log "cannot raise the hard process limit to $want_proc (it is $(ulimit -Hu))"
  fi
  if [[ $(ulimit -Su) != unlimited && $(ulimit -Su) -lt $want_proc ]]; then
    ulimit -Su "$(ulimit -Hu)" 2>/dev/null || true
    log "raised the process limit (ulimit -u) to $(ulimit -Su) for $n programs"
  fi
  local pidmax
  pidmax=$(cat /proc/sys/kernel/pid_max)
  if ((pidmax < want_proc)); then
    log "warning: kernel.pid_max is $pidmax, below the ~$want_proc tasks $n programs may need at once"
  fi
}

# titles_file FILE PREFIX COUNT: COUNT command lines "/bin/sleep PREFIX<run>NNNN".
titles_file() {
  local i
  for ((i = 1; i <= $3; i++)); do printf '/bin/sleep %s.%s%04d\n' "$2" "$run" "$i"; done >"$1"
}

# usrsvc_world DIR TITLES: a usrsvc config in DIR with one program per line
# of the TITLES file (success_seconds = 1), state and logs under DIR.
usrsvc_world() {
  local d=$1 i=0 t
  mkdir -p "$d/pids" "$d/logs"
  {
    printf '[Main]\npidfile = %s\nstate_dir = %s\nusrsvcd_stdout = %s\n' "$d/usrsvcd.pid" "$d/state" "$d/usrsvcd.log"
    while read -r t; do
      i=$((i + 1))
      printf '\n[Program:p%04d]\ncommand = %s\npidfile = %s/pids/p%04d.pid\nstdout = %s/logs/p%04d.log\nsuccess_seconds = 1\n' "$i" "$t" "$d" "$i" "$d" "$i"
    done <"$2"
  } >"$d/usrsvc.cfg"
  chmod 600 "$d/usrsvc.cfg"
}

# machine_line: this machine, now, and its load (for the record).
machine_line() {
  local cpu
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($cpu), $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(go version | awk '{print $3}'); load average $(cut -d' ' -f1-3 /proc/loadavg); running as $(id -un)"
}

# wait_quiet [MAXLOAD] [MAXWAIT s]: wait (up to MAXWAIT) for the 1-minute
# load average to drop below MAXLOAD, so the run is not measuring others.
wait_quiet() {
  local max=${1:-0.7} wait=${2:-0} t=0
  while ((t < wait)) && awk "BEGIN { exit !($(cut -d' ' -f1 /proc/loadavg) >= $max) }"; do
    ((t == 0)) && log "waiting up to ${wait}s for the 1-minute load ($(cut -d' ' -f1 /proc/loadavg)) to drop below $max"
    sleep 10
    t=$((t + 10))
  done
}

# measure_world BIN DIR N K WHAT: the usrsvc figures of N programs (titles
# "sleep 8650K.<run>NNNN", a floor "sleep 8651K.<run>NNNN") with the binaries
# in BIN and the world in DIR, into the associative array V. WHAT lists the
# sections: spawn start status rss idle reread masskill (start is always run:
# the others need the programs running; rss is the memory: RssAnon, PSS and
# VmRSS). Leaves nothing running.
measure_world() {
  local b=$1 d=$2 n=$3 k=$4 what=" $5 " line pid us_cfg
  mkdir -p "$d"
  local tok="sleep 8650$k.$run" ftok="sleep 8651$k.$run"
  [[ -e $d/titles ]] || titles_file "$d/titles" "8650$k" "$n"
  [[ -e $d/floor ]] || titles_file "$d/floor" "8651$k" "$n"
  [[ -e $d/usrsvc.cfg ]] || usrsvc_world "$d" "$d/titles"
  us_cfg=(--config "$d/usrsvc.cfg")
  V=([n]=$n)

  if [[ $what == *" spawn "* ]]; then
    log "N=$n: spawn floor"
    line=$("$E2E" -spawn "$d/floor" -cg)
    V[spawn_ms]=$(field wall_ms "$line"); V[spawn_cpu_us]=$(field cpu_per_us "$line")
  fi

  log "N=$n: usrsvc -P start all ($b)"
  line=$(HOME="$d" "$E2E" -time 1 -cg -progs "$tok" -- "$b/usrsvc" "${us_cfg[@]}" -q -P start all)
  V[start_ms]=$(field median_ms "$line")
  local cpu prog
  cpu=$(field cpu_ms "$line"); prog=$(field prog_cpu_ms "$line")
  if [[ -n $cpu && $cpu != n/a ]]; then
    V[start_cpu_us]=$(calc "$cpu * 1000 / $n")
    V[start_net_cpu_us]=$(calc "($cpu - $prog) * 1000 / $n")
    V[start_cpu_ratio]=$(ratio "${V[start_net_cpu_us]}" "${V[spawn_cpu_us]:-}")
  fi
  if [[ -n ${V[spawn_ms]:-} ]]; then
    V[start_ratio]=$(ratio "$(calc "${V[start_ms]} - 1000")" "${V[spawn_ms]}")
    V[start_goal_ms]=$(calc "1000 + 1.5 * ${V[spawn_ms]}")
    V[one_plus_spawn_ms]=$(calc "1000 + ${V[spawn_ms]}")
  fi
  local running
  running=$("$E2E" -pids "$tok" | wc -l)
  ((running == n)) || { log "N=$n: only $running of $n running after start all"; return 1; }

  log "N=$n: usrsvcd start (adopts $n)"
  HOME="$d" "$b/usrsvcd" "${us_cfg[@]}" start >/dev/null
  pid=$(cat "$d/usrsvcd.pid")
  sleep "${SETTLE:-5}"
  if [[ $what == *" rss "* ]]; then
    # RssAnon is the figure (what usrsvcd itself holds), PSS and VmRSS
    # beside it (see bench/e2e -mem).
    line=$("$E2E" -mem "$pid")
    V[anon_kb]=$(field anon_kb "$line"); V[pss_kb]=$(field pss_kb "$line"); V[rss_kb]=$(field rss_kb "$line")
    V[anon_mb]=$(calc "${V[anon_kb]} / 1024"); V[pss_mb]=$(calc "${V[pss_kb]} / 1024"); V[rss_mb]=$(calc "${V[rss_kb]} / 1024")
    V[mem_goal_mb]=$(calc "4 + $n * 20 / 1024")
  fi

  if [[ $what == *" status "* ]]; then
    log "N=$n: status all, floors"
    line=$("$E2E" -time "$REPEAT" -- "$b/usrsvc" --version)
    V[version_ms]=$(field median_ms "$line"); V[version_cpu_ms]=$(field rcpu_ms "$line")
    V[ps_ms]=$(field median_ms "$("$E2E" -time "$REPEAT" -- ps -u "$(id -un)" -o pid=,args=)")
    HOME="$d" "$b/usrsvc" "${us_cfg[@]}" status all >/dev/null 2>&1 || true # warm the page cache
    line=$(HOME="$d" "$E2E" -time "$REPEAT" -- "$b/usrsvc" "${us_cfg[@]}" status all)
    V[status_ms]=$(field median_ms "$line"); V[status_cpu_ms]=$(field rcpu_ms "$line")
    V[json_ms]=$(field median_ms "$(HOME="$d" "$E2E" -time "$REPEAT" -- "$b/usrsvc" "${us_cfg[@]}" --json status all)")
    V[status_us]=$(calc "${V[status_ms]} * 1000 / $n")
    V[status_version]=$(ratio "${V[status_ms]}" "${V[version_ms]}")
    V[status_ps]=$(ratio "${V[status_ms]}" "${V[ps_ms]}")
  fi

  if [[ $what == *" idle "* ]]; then
    log "N=$n: idle CPU over $IDLE"
    sleep "${SETTLE:-5}"
    line=$("$E2E" -cpu "$pid" -dur "$IDLE")
    V[idle_ms]=$(field all_threads_ms "$line"); V[idle_pct]=$(field pct "$line"); V[wakeups]=$(field wakeups "$line")
  fi

  if [[ $what == *" reread "* ]]; then
    log "N=$n: SIGUSR1 → acknowledged reread"
    line=$("$E2E" -reread "$pid" -ack "$d/state/usrsvcd.reload.json" -repeat 5)
    V[reread_ms]=$(field median_ms "$line")
    V[reread_us]=$(calc "${V[reread_ms]} * 1000 / $n")
  fi

  if [[ $what == *" masskill "* ]]; then
    log "N=$n: all $n killed at once"
    # The floor again, right before: the machine's state of this moment.
    line=$("$E2E" -spawn "$d/floor")
    V[spawn2_ms]=$(field wall_ms "$line")
    line=$("$E2E" -masskill "$d/titles" -timeout 300s) || log "N=$n: mass kill: $line"
    V[masskill_ms]=$(field last_ms "$line")
    V[masskill_ratio]=$(ratio "${V[masskill_ms]}" "${V[spawn2_ms]}")
    V[masskill_goal_ms]=$(calc "2 * ${V[spawn2_ms]}")
    sleep "${SETTLE:-5}"
    line=$("$E2E" -mem "$pid")
    V[anon_after_kb]=$(field anon_kb "$line"); V[pss_after_kb]=$(field pss_kb "$line"); V[rss_after_kb]=$(field rss_kb "$line")
  fi

  log "N=$n: stopping"
  HOME="$d" "$b/usrsvcd" "${us_cfg[@]}" stop >/dev/null
  HOME="$d" "$b/usrsvc" "${us_cfg[@]}" -q -P stop all >/dev/null || true
  "$E2E" -cleanup "$tok,$ftok" >/dev/null
}

# row_of COLS...: the values of V for COLS, tab-separated.
row_of() {
  local row=() c
  for c in "$@"; do row+=("${V[$c]:-}"); done
  (IFS=$'\t'; echo "${row[*]}")
}

# stop_all_and_exit: the EXIT/INT/TERM trap of a script that defines
# stop_all (stop and kill by pid whatever it started): stop_all, remove
# $tmp, exit with the status the script had.
stop_all_and_exit() {
  local rc=$?
  trap - EXIT INT TERM
  log "cleanup"
  stop_all
  rm -rf "$tmp"
  exit "$rc"
}
