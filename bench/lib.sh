# Shell helpers shared by bench/compare.sh and bench/scale.sh (sourced, not run).
#
# The caller sets: repo (the repository root), tmp (its temp dir), run (a
# 5-digit run id making titles unique). bench_build sets bin and E2E.

log() { echo "${LOGTAG:-bench}: $*" >&2; }

# bench_build builds usrsvc, usrsvcd, the driver and the chart writer into $tmp/bin.
bench_build() {
  bin="$tmp/bin"
  mkdir -p "$bin"
  log "building into $bin"
  (cd "$repo" && go build -o "$bin/" ./cmd/... && go build -o "$bin/e2e" ./bench/e2e && go build -o "$bin/chart" ./bench/chart)
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
