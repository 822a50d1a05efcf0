#!/usr/bin/env bash
# Before/after in the same run: builds several versions of usrsvc and
# measures them in turns on the same N programs, so that the machine's
# speed of the moment weighs on all of them alike. Not for CI.
#
#   bench/ab.sh [-n 200] [-rounds 5] [-what "spawn start status rss reread"] LABEL=REV[:VAR=VAL,...] ...
#
# REV is a git revision of this repository, or "." for the working tree as it
# is (uncommitted changes included); VAR=VAL are build environment variables
# (e.g. dynamic=main:CGO_ENABLED=1 static=main:CGO_ENABLED=0). The default
# is CGO_ENABLED=0, the static build the README recommends (docs/design.md). Each round
# measures every version once, in a rotated order, with the figures of
# bench/scale.sh (measure_world in bench/lib.sh: the spawn floor, start all
# with its CPU, status all, usrsvcd memory (RssAnon, PSS, VmRSS), reread,
# idle, mass kill). Prints, per figure, each version's
# median over the rounds (min–max) and its ratio to the first version.
set -euo pipefail

N=200 ROUNDS=5 WHAT="spawn start status rss reread"
IDLE=${IDLE:-10s}
REPEAT=${REPEAT:-10}
LOGTAG=ab
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in
    -n) N=$2; shift 2 ;;
    -rounds) ROUNDS=$2; shift 2 ;;
    -what) WHAT=$2; shift 2 ;;
    *) echo "ab: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -ge 1 ]] || { echo "usage: bench/ab.sh [-n N] [-rounds R] [-what FIGURES] LABEL=REV[:VAR=VAL,...] ..." >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
tmp=$(mktemp -d /tmp/usrsvc-ab.XXXXXX)
run=$(printf '%05d' $((RANDOM % 100000)))

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local d b
  for d in "$tmp"/w*; do
    [[ -e "$d/usrsvc.cfg" ]] || continue
    for b in "$tmp"/v-*; do
      HOME="$d" timeout 30 "$b/usrsvcd" --config "$d/usrsvc.cfg" stop >/dev/null 2>&1 || true
    done
    HOME="$d" timeout 120 "$bin/usrsvc" --config "$d/usrsvc.cfg" -q -P stop all >/dev/null 2>&1 || true
  done
  [[ -x ${E2E:-} ]] && "$E2E" -cleanup "$tmp,sleep 86500.$run,sleep 86510.$run" >&2 2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT INT TERM

raise_limits "$N"
bench_build # the driver, and a usrsvc for the cleanup

labels=()
for spec in "$@"; do
  label=${spec%%=*} rest=${spec#*=}
  rev=${rest%%:*} envs=""
  [[ $rest == *:* ]] && envs=${rest#*:}
  src="$tmp/src-$label" out="$tmp/v-$label"
  mkdir -p "$src" "$out"
  if [[ $rev == . ]]; then
    (cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$src" 2>/dev/null) || true
  else
    git -C "$repo" archive "$rev" | tar -x -C "$src"
  fi
  log "building $label ($rev${envs:+, $envs})"
  (cd "$src" && env CGO_ENABLED=0 ${envs//,/ } go build -o "$out/" ./cmd/usrsvc ./cmd/usrsvcd)
  labels+=("$label")
done

log "machine: $(machine_line)"
declare -A V ALL
figs=(spawn_ms spawn_cpu_us start_ms start_net_cpu_us start_cpu_us version_ms version_cpu_ms status_ms status_cpu_ms json_ms anon_kb pss_kb rss_kb reread_ms idle_ms wakeups masskill_ms anon_after_kb pss_after_kb rss_after_kb)
nv=${#labels[@]}
for ((r = 0; r < ROUNDS; r++)); do
  for ((i = 0; i < nv; i++)); do
    label=${labels[$(((i + r) % nv))]}
    what=$WHAT
    # The spawn floor once a round, with the first version of the round.
    ((i == 0)) || what=${what//spawn/}
    measure_world "$tmp/v-$label" "$tmp/w" "$N" 0 "$what"
    for f in "${figs[@]}"; do
      [[ -n ${V[$f]:-} ]] && ALL["$label,$f"]+="${V[$f]} "
      [[ $f == spawn* && -n ${V[$f]:-} ]] && ALL["floor,$f"]+="${V[$f]} "
    done
  done
done

stats() { # values... → "median (min–max)"
  tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%g (%g–%g)", m, v[1], v[NR] }'
}
med() { stats "$@" | cut -d' ' -f1; }

echo "Machine: $(machine_line); N = $N, $ROUNDS rounds, versions measured in turns"
echo
head="| Figure |"; sep="|---|"
for l in "${labels[@]}"; do head+=" $l |"; sep+="---|"; done
for l in "${labels[@]:1}"; do head+=" $l ÷ ${labels[0]} |"; sep+="---|"; done
echo "$head"; echo "$sep"
for f in spawn_ms spawn_cpu_us; do
  [[ -n ${ALL["floor,$f"]:-} ]] && echo "| $f (floor) | $(stats ${ALL["floor,$f"]}) |"
done
for f in "${figs[@]}"; do
  [[ $f == spawn* ]] && continue
  [[ -n ${ALL["${labels[0]},$f"]:-} ]] || continue
  line="| $f |"
  for l in "${labels[@]}"; do line+=" $(stats ${ALL["$l,$f"]:-}) |"; done
  for l in "${labels[@]:1}"; do line+=" $(ratio "$(med ${ALL["$l,$f"]:-})" "$(med ${ALL["${labels[0]},$f"]})") |"; done
  echo "$line"
done
