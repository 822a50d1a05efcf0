#!/usr/bin/env bash
# Install usrsvc and usrsvcd and their systemd units. See --help.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: systemd/install.sh [options]

Installs the usrsvc, usrsvcd and usrsvcweb binaries into PREFIX/bin, their
manual pages into PREFIX/share/man (generated from docs/man with Go), the
template units usrsvcd@.service and usrsvcweb@.service (system manager) and
the user units usrsvcd.service and usrsvcweb.service (systemctl --user),
then runs "systemctl daemon-reload" when run as root on a host booted with
systemd. Works from any directory.

Options:
  --prefix DIR         install the binaries into DIR/bin (default /usr/local);
                       the units' ExecStart/ExecReload are rewritten to match
  --bin-dir DIR        copy the usrsvc, usrsvcd and usrsvcweb binaries found in DIR
                       instead of building them with "go build" from this
                       repository (e.g. when root has no Go toolchain)
  --unit-dir DIR       where the template units go (default /etc/systemd/system)
  --user-unit-dir DIR  where the user units go (default /etc/systemd/user)
  --man-dir DIR        where the manual pages go, in DIR/man1, man5 and man8
                       (default PREFIX/share/man; e.g. ~/.local/share/man)
  --no-man             do not install the manual pages
  --no-daemon-reload   do not run "systemctl daemon-reload"
  --dry-run            print every action ("would: ...") and change nothing
  -h, --help           print this help

Upgrading is safe while usrsvcd runs: the binaries are replaced, and
"systemctl restart usrsvcd@USER" restarts the daemon only; programs keep
running and are adopted again.
EOF
}

die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

# The repository is the parent of this script's directory, wherever we are
# called from.
script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname -- "$script_dir")

# The directory of the binaries written in the shipped units' Exec lines.
readonly shipped_bin_dir=/usr/local/bin
readonly shipped_bin=$shipped_bin_dir/usrsvcd
binaries=(usrsvc usrsvcd usrsvcweb)

prefix=/usr/local
bin_dir=
unit_dir=/etc/systemd/system
user_unit_dir=/etc/systemd/user
dry_run=false
daemon_reload=true
man_dir=
install_man=true

need_arg() {
	[[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--prefix) need_arg "$@"; prefix=$2; shift 2 ;;
	--prefix=*) prefix=${1#*=}; shift ;;
	--bin-dir) need_arg "$@"; bin_dir=$2; shift 2 ;;
	--bin-dir=*) bin_dir=${1#*=}; shift ;;
	--unit-dir) need_arg "$@"; unit_dir=$2; shift 2 ;;
	--unit-dir=*) unit_dir=${1#*=}; shift ;;
	--user-unit-dir) need_arg "$@"; user_unit_dir=$2; shift 2 ;;
	--user-unit-dir=*) user_unit_dir=${1#*=}; shift ;;
	--man-dir) need_arg "$@"; man_dir=$2; shift 2 ;;
	--man-dir=*) man_dir=${1#*=}; shift ;;
	--no-man) install_man=false; shift ;;
	--no-daemon-reload) daemon_reload=false; shift ;;
	--dry-run) dry_run=true; shift ;;
	-h | --help) usage; exit 0 ;;
	*) printf 'install.sh: unknown argument: %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
	esac
done

for var in prefix unit_dir user_unit_dir; do
	val=${!var}
	[[ $val == /* ]] || die "--${var//_/-} must be an absolute path, got: ${val:-(empty)}"
	[[ $val != *[[:space:]]* ]] || die "--${var//_/-} must not contain whitespace (it goes into the units' Exec lines): $val"
done
# Normalize: no trailing slash (but keep "/").
prefix=${prefix%/}; prefix=${prefix:-/}
dest_bin_dir=${prefix%/}/bin
new_bin=$dest_bin_dir/usrsvcd
man_dir=${man_dir:-${prefix%/}/share/man}
[[ $man_dir == /* ]] || die "--man-dir must be an absolute path, got: $man_dir"

# run CMD...: print the action, then do it unless --dry-run.
run() {
	if $dry_run; then
		printf 'would: %s\n' "$*"
	else
		printf '+ %s\n' "$*"
		"$@"
	fi
}

# rewrite_unit SRC: print SRC with the binaries' directory of its Exec
# lines replaced by $dest_bin_dir.
rewrite_unit() {
	local line
	while IFS= read -r line || [[ -n $line ]]; do
		if [[ $line == Exec*=* ]]; then
			line=${line//"$shipped_bin_dir/"/"$dest_bin_dir/"}
		fi
		printf '%s\n' "$line"
	done <"$1"
}

# install_unit SRC DIR: install SRC into DIR (mode 0644) with its Exec lines
# rewritten for the prefix, and show the resulting Exec lines.
install_unit() {
	local src=$1 dir=$2 dest line tmp
	dest=$dir/$(basename -- "$src")
	run install -d -m 0755 "$dir"
	if $dry_run; then
		if [[ $new_bin == "$shipped_bin" ]]; then
			printf 'would: install -m 0644 %s %s\n' "$src" "$dest"
		else
			printf 'would: install -m 0644 %s %s, rewriting %s/ to %s/ in its Exec lines\n' \
				"$src" "$dest" "$shipped_bin_dir" "$dest_bin_dir"
		fi
		while IFS= read -r line; do
			printf 'would: set in %s: %s\n' "$dest" "$line"
		done < <(rewrite_unit "$src" | grep '^Exec')
		return
	fi
	tmp=$(mktemp)
	rewrite_unit "$src" >"$tmp"
	printf '+ install -m 0644 %s %s (Exec lines use %s/)\n' "$src" "$dest" "$dest_bin_dir"
	if ! install -m 0644 "$tmp" "$dest"; then
		rm -f -- "$tmp"
		die "cannot write $dest"
	fi
	rm -f -- "$tmp"
	grep '^Exec' "$dest" | sed 's/^/  /'
}

template_units=("$script_dir/usrsvcd@.service" "$script_dir/usrsvcweb@.service")
user_units=("$script_dir/usrsvcd.service" "$script_dir/usrsvcweb.service")
for unit in "${template_units[@]}" "${user_units[@]}"; do
	[[ -f $unit ]] || die "missing $unit: run this script from a usrsvc checkout"
done

# 1. The binaries: from --bin-dir, or built from this repository.
stage=
cleanup() {
	if [[ -n $stage ]]; then rm -rf -- "$stage"; fi
}
trap cleanup EXIT

if [[ -n $bin_dir ]]; then
	for b in "${binaries[@]}"; do
		[[ -f $bin_dir/$b && -x $bin_dir/$b ]] || die "--bin-dir $bin_dir: no executable $b in it"
	done
	src_dir=$(cd -- "$bin_dir" && pwd -P)
else
	command -v go >/dev/null 2>&1 ||
		die "go not found: install Go, or build as a user (CGO_ENABLED=0 go build -o DIR ./cmd/...) and pass --bin-dir DIR"
	[[ -f $repo/go.mod ]] || die "no go.mod in $repo: this script must stay in the repository's systemd/ directory"
	if $dry_run; then
		src_dir='<tmpdir>'
	else
		stage=$(mktemp -d)
		src_dir=$stage
	fi
	for b in "${binaries[@]}"; do
		if $dry_run; then
			printf 'would: (cd %s && CGO_ENABLED=0 go build -o %s/%s ./cmd/%s)\n' "$repo" "$src_dir" "$b" "$b"
		else
			# Static binaries: every start re-executes the binary as its
			# launcher, and a static one starts faster (see docs/design.md).
			printf '+ (cd %s && CGO_ENABLED=0 go build -o %s/%s ./cmd/%s)\n' "$repo" "$src_dir" "$b" "$b"
			(cd -- "$repo" && CGO_ENABLED=0 go build -o "$src_dir/$b" "./cmd/$b") || die "go build ./cmd/$b failed"
		fi
	done
fi

run install -d -m 0755 "$dest_bin_dir"
for b in "${binaries[@]}"; do
	# install(1) unlinks the old file first: replacing a running usrsvcd is fine.
	run install -m 0755 "$src_dir/$b" "$dest_bin_dir/$b"
done

# 2. The manual pages: generated from their Markdown sources in docs/man,
# since nothing generated is kept in the repository.
if ! $install_man; then
	echo "note: not installing the manual pages (--no-man)"
elif ! command -v go >/dev/null 2>&1; then
	echo "note: go not found: the manual pages are not installed; where Go is, run"
	echo "      (cd $repo && go run ./internal/mangen -o MANDIR)"
elif $dry_run; then
	printf 'would: (cd %s && go run ./internal/mangen -o %s)\n' "$repo" "$man_dir"
else
	printf '+ (cd %s && go run ./internal/mangen -o %s)\n' "$repo" "$man_dir"
	(cd -- "$repo" && go run ./internal/mangen -o "$man_dir" >/dev/null) || die "generating the manual pages failed"
fi

# 3. The units.
for unit in "${template_units[@]}"; do
	install_unit "$unit" "$unit_dir"
done
for unit in "${user_units[@]}"; do
	install_unit "$unit" "$user_unit_dir"
done

# 4. Tell systemd. Only root can reload the system manager; user managers
# pick up /etc/systemd/user on "systemctl --user daemon-reload" or at their
# next start.
if ! $daemon_reload; then
	echo "note: not running systemctl daemon-reload (--no-daemon-reload)"
elif ! command -v systemctl >/dev/null 2>&1; then
	echo "note: systemctl not found: not running systemctl daemon-reload"
elif [[ ! -d /run/systemd/system ]]; then
	echo "note: this host is not running systemd: not running systemctl daemon-reload"
elif [[ $EUID -ne 0 ]]; then
	echo "note: not root: run \"systemctl daemon-reload\" as root"
else
	run systemctl daemon-reload
fi

if $dry_run; then
	echo "dry run: nothing was changed"
fi
cat <<EOF

To run usrsvcd for an account USER (its config is ~USER/usrsvc.cfg; check it
first with: sudo -u USER $new_bin checkconfig), either
  - with the system manager:
      systemctl enable --now usrsvcd@USER
  - or with the user's own manager, as USER:
      systemctl --user daemon-reload
      systemctl --user enable --now usrsvcd
    plus, once, so that it starts at boot and survives logout:
      loginctl enable-linger USER
Reload the config with "systemctl reload usrsvcd@USER" (or
"systemctl --user reload usrsvcd"), which runs "usrsvcd reread".
The manual: man usrsvc, man usrsvcd, man usrsvcweb, man usrsvc.cfg (from
$man_dir; if man does not find them there, add it to MANPATH:
export MANPATH="$man_dir:").
For supervisorctl (and the web interface), usrsvcweb likewise:
"systemctl enable --now usrsvcweb@USER" or "systemctl --user enable --now
usrsvcweb"; its [Web] section in ~USER/usrsvc.cfg says where it listens.
EOF
