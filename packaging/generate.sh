#!/bin/sh
# Generates the package's files from the pgfailover binary itself, at build
# time, so they cannot drift from the code:
#   pgfailover@.service, pgfailover-monitor.service  (pgfailover show systemd --template ...)
#   pgfailover.1                                      (man page: every command's --help)
#   pgfailover.bash-completion                        (commands, options and their values)
# usage: generate.sh BINARY OUTDIR INSTALLED_BINARY VERSION
set -eu
bin=$1
out=$2
installed=$3
version=$4
mkdir -p "$out"
tmp="$out/.generate.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
us=$(printf '\037')

"$bin" show systemd --template keeper --binary "$installed" > "$tmp/pgfailover@.service"
"$bin" show systemd --template monitor --binary "$installed" > "$tmp/pgfailover-monitor.service"

# The command tree, from --help: one line per command path ("" is the root),
# then its help text in $tmp/help/<n>.
: > "$tmp/commands"
mkdir -p "$tmp/help"
n=0
walk() {  # walk "sub command path"
  n=$((n + 1))
  # shellcheck disable=SC2086  # the path is words
  "$bin" $1 --help > "$tmp/help/$n"
  printf '%s\t%s\n' "$n" "$1" >> "$tmp/commands"
  subs=$(awk '/^Subcommands:/ {s = 1; next} s && /^$/ {exit} s && /^  [a-z]/ {print $1}' "$tmp/help/$n")
  for s in $subs; do
    walk "${1:+$1 }$s"
  done
}
walk ""

# Options of one help text: "name<US>value-kind<US>description" (US: \037, not
# a whitespace, so that an empty kind survives `read`) where the
# value kind is "" for a flag, "{a,b}" for a closed set, else the type word.
options_of() {
  awk '
    function flush() { if (name != "") print name "\037" kind "\037" desc; name = "" }
    /^Options:/ { s = 1; next }
    s && /^$/ { flush(); exit }
    s && /^  -/ {
      flush()
      line = substr($0, 3)
      # "name type" up to the first run of two spaces, then the description
      # (on the next lines when the name and type are too long)
      p = index(line, "  ")
      head = p ? substr(line, 1, p - 1) : line
      desc = p ? substr(line, p) : ""
      sub(/^ +/, "", desc)
      q = index(head, " ")
      name = q ? substr(head, 1, q - 1) : head
      kind = q ? substr(head, q + 1) : ""
      next
    }
    s && /^   / { t = $0; sub(/^ +/, "", t); desc = desc (desc == "" ? "" : " ") t }
    END { flush() }
  ' "$1"
}

# --- man page -------------------------------------------------------------
roff() {  # escape text for roff: backslashes, leading dots and quotes, dashes
  sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}
{
  printf '.TH PGFAILOVER 1 "" "pgfailover %s" "User Commands"\n' "$version"
  printf '.SH NAME\npgfailover \\- automatic, split\\-brain\\-safe failover for PostgreSQL 15\n'
  printf '.SH SYNOPSIS\n.B pgfailover\n.I command\n.RI [ options ]\n'
  printf '.SH DESCRIPTION\n'
  cat <<'EOF' | roff
One binary is the monitor, the keeper of each data node, and the operator's
command line. The monitor keeps each node's role in its own Postgres and is
the only place where roles are decided; a keeper beside each Postgres reports
facts, reads back its goal state and gets there (promote, demote, pg_rewind,
re-point replication). Clients get a multi-host URI (pgfailover show uri).
Every error is one line, "pgfailover: <what is wrong>", with a non-zero exit.
EOF
  printf '.SH COMMANDS\n'
  while IFS="$(printf '\t')" read -r idx path; do
    help="$tmp/help/$idx"
    if [ -z "$path" ]; then
      title="pgfailover"
    else
      title="pgfailover $path"
    fi
    printf '.SS "%s"\n' "$(printf '%s' "$title" | roff)"
    head -n 1 "$help" | roff
    printf '.PP\n.B Usage:\n'
    sed -n 's/^Usage: //p' "$help" | roff
    if grep -q '^Subcommands:' "$help"; then
      printf '.PP\nSubcommands:\n'
      awk '/^Subcommands:/ {s = 1; next} s && /^$/ {exit} s && /^  [a-z]/ {print $1}' "$help" |
        tr '\n' ' ' | roff
      printf '\n'
    fi
    options_of "$help" | while IFS="$us" read -r name kind desc; do
      printf '.TP\n.B %s' "$(printf '%s' "$name" | roff)"
      [ -n "$kind" ] && printf ' \\fI%s\\fR' "$(printf '%s' "$kind" | roff)"
      printf '\n%s\n' "$(printf '%s' "$desc" | roff)"
    done
    # the footer: what follows the blank line after the last section
    last=$(grep -nE '^(Options|Subcommands):$' "$help" | tail -n 1 | cut -d: -f1)
    footer=$(awk -v last="$last" 'NR > last && !blank && /^$/ {blank = 1; next} blank {print}' "$help")
    if [ -n "$footer" ] && [ -n "$path" ]; then
      printf '.PP\n.nf\n'
      printf '%s\n' "$footer" | roff
      printf '.fi\n'
    fi
  done < "$tmp/commands"
  cat <<'EOF'
.SH SYSTEMD
.TP
.B pgfailover@.service
One instance per data directory, named after it as systemd\-escape \-\-path
writes it: systemctl enable \-\-now pgfailover@var\-lib\-postgresql\-15\-main.service
.TP
.B pgfailover\-monitor.service
The monitor in /var/lib/pgfailover/monitor.
.PP
Both run as postgres and restart on failure. systemctl stop sends SIGINT:
pgfailover stops Postgres (fast shutdown), then exits. KillMode=process: when
pgfailover dies, Postgres keeps running and the restarted service adopts it.
pgfailover show systemd \-\-pgdata DIR prints the unit for a data directory.
.SH FILES
.TP
.I <pgdata>.pgfailover/
pgfailover.conf, keeper.db, pgfailover.pid, pgfailover.log, postgres.log of a
data directory (outside it: pg_basebackup and pg_rewind replace PGDATA).
.TP
.I /usr/share/pgfailover/sql/
The monitor's schema migrations.
.TP
.I /usr/share/doc/pgfailover/
architecture.md, operations.md (the runbook), troubleshooting.md and the
other documents.
.SH SEE ALSO
.BR pg_basebackup (1),
.BR pg_rewind (1),
.BR systemd.service (5)
EOF
} > "$tmp/pgfailover.1"

# --- bash completion --------------------------------------------------------
{
  cat <<'EOF'
# bash completion for pgfailover, generated from its --help.
_pgfailover_subcommands() {
  case "$1" in
EOF
  while IFS="$(printf '\t')" read -r idx path; do
    subs=$(awk '/^Subcommands:/ {s = 1; next} s && /^$/ {exit} s && /^  [a-z]/ {print $1}' "$tmp/help/$idx" | tr '\n' ' ')
    [ -n "$subs" ] && printf '    "%s") echo "%s" ;;\n' "$path" "${subs% }"
  done < "$tmp/commands"
  cat <<'EOF'
  esac
}
_pgfailover_options() {
  case "$1" in
EOF
  while IFS="$(printf '\t')" read -r idx path; do
    opts=$(options_of "$tmp/help/$idx" | cut -d "$us" -f1 | tr ',' '\n' | grep -- '^--' | tr '\n' ' ')
    printf '    "%s") echo "%s" ;;\n' "$path" "${opts% }"
  done < "$tmp/commands"
  cat <<'EOF'
  esac
}
# What an option takes: "" for a flag, "{a,b}" for a set, "path", or "value".
_pgfailover_option_kind() {
  case "$1" in
EOF
  while IFS="$(printf '\t')" read -r idx path; do
    options_of "$tmp/help/$idx" | while IFS="$us" read -r name kind desc; do
      long=$(printf '%s' "$name" | tr ',' '\n' | grep -- '^--' | head -n 1)
      [ -n "$long" ] || continue
      case "$kind" in
        "") k="" ;;
        *"{"*) k=$(printf '%s' "$kind" | sed 's/.*\({[^}]*}\).*/\1/') ;;
        *) case "$long" in
             --pgdata|--state-dir|--pg-bindir|--dir|--binary|*file*|*-cert|*-key) k=path ;;
             *) k=value ;;
           esac ;;
      esac
      printf '    "%s %s") echo "%s" ;;\n' "$path" "$long" "$k"
    done
  done < "$tmp/commands"
  cat <<'EOF'
  esac
}
_pgfailover() {
  local cur="${COMP_WORDS[COMP_CWORD]}" path="" i w kind subs
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    case "$w" in
      -*) kind=$(_pgfailover_option_kind "$path $w")
          [ -n "$kind" ] && [ "${w#*=}" = "$w" ] && i=$((i + 1)) ;;
      *) subs=" $(_pgfailover_subcommands "$path") "
         [[ "$subs" == *" $w "* ]] && path="${path:+$path }$w" ;;
    esac
  done
  if ((COMP_CWORD > 1)); then
    kind=$(_pgfailover_option_kind "$path ${COMP_WORDS[COMP_CWORD - 1]}")
    case "$kind" in
      "{"*) kind="${kind#\{}"; kind="${kind%\}}"
            mapfile -t COMPREPLY < <(compgen -W "${kind//,/ }" -- "$cur"); return ;;
      path) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
      value) COMPREPLY=(); return ;;
    esac
  fi
  if [[ "$cur" == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_pgfailover_options "$path")" -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -W "$(_pgfailover_subcommands "$path")" -- "$cur")
  fi
}
complete -F _pgfailover pgfailover
EOF
} > "$tmp/pgfailover.bash-completion"

for f in "pgfailover@.service" pgfailover-monitor.service pgfailover.1 pgfailover.bash-completion; do
  mv "$tmp/$f" "$out/$f"
done
