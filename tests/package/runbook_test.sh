#!/usr/bin/env bash
# The runbook test: runs every command block of docs/operations.md, in order,
# on a stand-in of the first deployment, so the runbook cannot drift from the
# product.
#
# The stand-in: three Debian 12 hosts, sec001, idp001 and idp002, each a
# systemd-nspawn container booting real systemd from an overlay of the
# fixture's clean root, each in a network namespace of its own, joined by a
# bridge that lives in a fourth namespace (nothing is linked to the root
# namespace; no default route: no packet can leave the machine). idp001 and
# idp002 start as the deployment does today: Debian's postgresql@15-main
# running an independent "keycloak" database each (a few tables named as
# Keycloak's), and a Keycloak stand-in (tests/package/keycloak-standin) using
# it. The package file is in /root of each host; apt's source is a local copy
# of the Debian packages the fixture downloaded (the hosts have no network).
#
# How operations.md drives it (HTML comments, invisible when rendered):
#   <!-- run: HOST [HOST...] -->   the next ```sh block runs as root on each HOST
#                                  (bash -euo pipefail, cwd /root); it must succeed
#   <!-- output -->                every line of the next ``` block must appear in
#                                  the output of the previous run block
#   <!-- copy: H:PATH H:PATH... --> copy a file from the first host to the others,
#                                  as the text tells the operator to (scp)
#   <!-- wait: HOST SECONDS CMD --> test only: CMD on HOST must succeed within SECONDS
#   <!-- simulate: lose HOST -->   test only: HOST's node dies and its disk is
#                                  replaced (a fresh Debian cluster, nothing of pgfailover)
# A ```sh block without a run directive fails the test: nothing is shown that
# is not run.
#   runbook_test.sh FIXDIR SOURCE_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
fix=$1
src=$2
doc=${PGF_RUNBOOK_DOC:-$src/docs/operations.md}
private_mounts "$@"

start=$SECONDS
deb=$(ls "$fix"/pgfailover_*_amd64.deb)
tmp=$(mktemp -d /tmp/pgf-runbook.XXXXXX)
chmod 0755 "$tmp"
tag="pgfrb$$"
hosts=(sec001 idp001 idp002)
declare -A addr=([sec001]=10.213.7.10 [idp001]=10.213.7.11 [idp002]=10.213.7.12)
declare -A nspawn_pid leader

# --- the steps of the runbook, parsed first: a malformed document fails fast --
steps="$tmp/steps"
mkdir -p "$steps"
parse() {
  local n=0 line directive="" pending_output=0 in_block=0 lang="" body="" lineno=0 block_line=0
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    if [ "$in_block" = 1 ]; then
      if [ "$line" = '```' ]; then
        in_block=0
        if [ -n "$directive" ]; then
          n=$((n + 1))
          printf '%s\n' "$directive" > "$steps/$(printf %03d $n).directive"
          printf '%s' "$body" > "$steps/$(printf %03d $n).body"
          echo "$block_line" > "$steps/$(printf %03d $n).line"
          directive=""
        elif [ "$lang" = sh ] || [ "$lang" = bash ] || [ "$lang" = console ]; then
          die "$doc:$block_line: a \`\`\`$lang block without <!-- run: HOST -->: every command shown must be run"
        fi
        continue
      fi
      body+="$line"$'\n'
      continue
    fi
    case "$line" in
      '<!-- run: '*' -->')
        directive="run ${line#<!-- run: }"; directive=${directive% -->} ;;
      '<!-- output -->')
        [ "$n" -gt 0 ] || die "$doc:$lineno: <!-- output --> before any run block"
        directive="output" ;;
      '<!-- copy: '*' -->' | '<!-- wait: '*' -->' | '<!-- simulate: '*' -->')
        n=$((n + 1))
        local d=${line#<!-- }
        d=${d% -->}
        printf '%s\n' "${d%%:*}${d#*:}" > "$steps/$(printf %03d $n).directive"
        : > "$steps/$(printf %03d $n).body"
        echo "$lineno" > "$steps/$(printf %03d $n).line" ;;
      '```'*)
        in_block=1
        lang=${line#\`\`\`}
        body=""
        block_line=$lineno
        if [ -n "$directive" ] && [ "${directive%% *}" = run ] && [ "$lang" != sh ]; then
          die "$doc:$lineno: a run directive must be followed by a \`\`\`sh block"
        fi ;;
      '<!-- '*': '*)
        die "$doc:$lineno: unknown directive: $line" ;;
    esac
  done < "$doc"
  [ "$in_block" = 0 ] || die "$doc: unterminated code block"
  [ -z "$directive" ] || die "$doc: a directive without its block at the end"
  say "$doc: $n steps"
}
parse

# --- the hosts -----------------------------------------------------------------
cleanup() {
  local rc=$?
  set +e
  for h in "${hosts[@]}"; do
    if [ -n "${nspawn_pid[$h]:-}" ] && kill -0 "${nspawn_pid[$h]}" 2> /dev/null; then
      kill -TERM "${nspawn_pid[$h]}"  # nspawn: a clean poweroff of the container
    fi
  done
  for h in "${hosts[@]}"; do
    local p=${nspawn_pid[$h]:-}
    [ -n "$p" ] || continue
    wait_until 30 bash -c "! kill -0 $p 2> /dev/null" || {
      [ -n "${leader[$h]:-}" ] && kill -KILL "${leader[$h]}" 2> /dev/null
      kill -KILL "$p" 2> /dev/null
      wait_until 10 bash -c "! kill -0 $p 2> /dev/null"
    }
  done
  for h in "${hosts[@]}" br; do ip netns del "$tag$h" 2> /dev/null; done
  for h in "${hosts[@]}"; do
    for hier in systemd unified; do
      [ -d "/sys/fs/cgroup/$hier/$tag-$h" ] && find "/sys/fs/cgroup/$hier/$tag-$h" -depth -type d -exec rmdir {} + 2> /dev/null
    done
  done
  if [ "$rc" = 0 ] || [ -z "${PGF_KEEP_RUNBOOK_TMP:-}" ]; then remove_tree "$tmp"; else say "kept $tmp"; fi
  exit "$rc"
}
trap cleanup EXIT

# The network: a bridge in its own namespace, one namespace per host.
ip netns add "${tag}br"
ip -n "${tag}br" link add br0 type bridge
ip -n "${tag}br" link set br0 up
for h in "${hosts[@]}"; do
  ip netns add "$tag$h"
  ip link add eth0 netns "$tag$h" type veth peer name "p$h" netns "${tag}br"
  ip -n "${tag}br" link set "p$h" master br0 up
  ip -n "$tag$h" addr add "${addr[$h]}/24" dev eth0
  ip -n "$tag$h" link set eth0 up
  ip -n "$tag$h" link set lo up
done

hosts_file=$'127.0.0.1\tlocalhost\n'
for h in "${hosts[@]}"; do hosts_file+="${addr[$h]}"$'\t'"$h"$'\n'; done

for h in "${hosts[@]}"; do
  root="$tmp/$h/root"
  overlay "$fix/base" "$tmp/$h/upper" "$root"
  echo "$h" > "$root/etc/hostname"
  printf '%s' "$hosts_file" > "$root/etc/hosts"
  rm -f "$root/etc/apt/sources.list"
  echo 'deb [trusted=yes] file:/srv/apt ./' > "$root/etc/apt/sources.list.d/local.list"
  mkdir -p "$root/srv/apt"
  cp "$deb" "$root/root/"
  # Nothing in these containers needs a console login.
  ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"
  if [ "$h" != sec001 ]; then
    install -m 0755 "$here/keycloak-standin" "$root/usr/local/bin/keycloak-standin"
    cat > "$root/etc/systemd/system/keycloak.service" << 'EOF'
[Unit]
Description=Keycloak (stand-in of the runbook test)
After=postgresql.service
[Service]
Environment=KC_DB_URL=jdbc:postgresql://localhost:5432/keycloak
Environment=KC_DB_USERNAME=keycloak
Environment=KC_DB_PASSWORD=kc-db-password
ExecStart=/usr/local/bin/keycloak-standin
Restart=always
RestartSec=1
[Install]
WantedBy=multi-user.target
EOF
    ln -sf /etc/systemd/system/keycloak.service "$root/etc/systemd/system/multi-user.target.wants/keycloak.service"
  fi
  # Each container in cgroups of its own (systemd's and the unified
  # hierarchy): with --keep-unit, nspawn roots the container's cgroup namespace
  # where it runs, and two containers sharing a root would manage the same
  # cgroup directories (/system.slice/...) and trip over each other.
  for hier in systemd unified; do mkdir -p "/sys/fs/cgroup/$hier/$tag-$h"; done
  bash -c 'for hier in systemd unified; do echo $$ > "/sys/fs/cgroup/$hier/$0/cgroup.procs"; done; exec "$@"' "$tag-$h" \
    systemd-nspawn --quiet -D "$root" --boot --register=no --keep-unit -M "$tag$h" --hostname="$h" \
    --network-namespace-path="/run/netns/$tag$h" --bind-ro="$fix/apt:/srv/apt" \
    --console=passive --link-journal=no < /dev/null > "$tmp/$h/console.log" 2>&1 &
  nspawn_pid[$h]=$!
done

container_leader() {  # the container's init: systemd, a child of systemd-nspawn
  local p
  for p in $(cat /proc/"$1"/task/*/children 2> /dev/null); do
    if [ "$(cat "/proc/$p/comm" 2> /dev/null)" = systemd ]; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
on() {  # on HOST COMMAND...: as root in HOST (like an ssh session: a login environment)
  local h=$1
  shift
  nsenter -t "${leader[$h]}" -a -r -w env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM=dumb "$@"
}
for h in "${hosts[@]}"; do
  wait_until 30 container_leader "${nspawn_pid[$h]}" > /dev/null || { cat "$tmp/$h/console.log"; die "$h did not start"; }
  leader[$h]=$(container_leader "${nspawn_pid[$h]}")
done
for h in "${hosts[@]}"; do
  wait_until 60 on "$h" test -S /run/systemd/private || { cat "$tmp/$h/console.log"; die "$h: systemd did not come up"; }
  state=$(on "$h" timeout 120 systemctl is-system-running --wait 2>&1 || true)
  case "$state" in
    running) ;;
    *) on "$h" systemctl --failed --no-pager || true
       on "$h" journalctl -b --no-pager -n 40 || true
       die "$h booted into state '$state'" ;;
  esac
done
say "3 hosts booted in $((SECONDS - start)) s"

# Today's state: sec001 is a fresh host; idp001 and idp002 each run Debian's
# cluster 15/main with an independent keycloak database.
on sec001 pg_dropcluster --stop 15 main
for h in idp001 idp002; do
  # A cluster of its own: the root they share made one with the same system
  # identifier everywhere, which two independent databases never have.
  on "$h" bash -c 'pg_dropcluster --stop 15 main && pg_createcluster 15 main --start' > /dev/null
  wait_until 60 on "$h" sudo -u postgres psql -XAtqc 'SELECT 1' > /dev/null || die "postgresql@15-main did not start on $h"
  other_user=$([ "$h" = idp001 ] && echo bob || echo carol)
  on "$h" sudo -u postgres psql -X -q -v ON_ERROR_STOP=1 > /dev/null << EOF
CREATE ROLE keycloak LOGIN PASSWORD 'kc-db-password';
CREATE DATABASE keycloak OWNER keycloak;
\\c keycloak
SET ROLE keycloak;
CREATE TABLE realm (id varchar(36) PRIMARY KEY, name varchar(255) NOT NULL);
CREATE TABLE user_entity (id varchar(36) PRIMARY KEY, email varchar(255), username varchar(255) NOT NULL,
                          realm_id varchar(255) NOT NULL REFERENCES realm (id));
CREATE TABLE standin_writes (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), host text);
INSERT INTO realm VALUES ('master', 'master'), ('idp', 'idp');
INSERT INTO user_entity VALUES ('1', NULL, 'admin', 'master'), ('2', 'alice@example.org', 'alice', 'idp'),
                               ('3-$h', '$other_user@example.org', '$other_user', 'idp');
EOF
  wait_until 30 on "$h" grep -q '^ok ' /run/keycloak-standin.last || die "the Keycloak stand-in on $h does not write"
done
say "today's deployment in place after $((SECONDS - start)) s"

# --- run the steps ------------------------------------------------------------
diagnose() {
  local h
  say "--- diagnostics"
  for h in "${hosts[@]}"; do
    echo "=== $h: failed units, pgfailover journal"
    on "$h" systemctl --failed --no-pager 2>&1 | tail -n 5
    on "$h" journalctl --no-pager -n 60 -u 'pgfailover*' 2>&1 | tail -n 60
  done
  on sec001 sudo -u postgres pgfailover show state --formation keycloak --pgdata /var/lib/pgfailover/monitor 2>&1 || true
  on sec001 sudo -u postgres pgfailover show events --count 30 --formation keycloak --pgdata /var/lib/pgfailover/monitor 2>&1 || true
}
last_output="$tmp/last-output"
: > "$last_output"
for d in "$steps"/*.directive; do
  s=${d%.directive}
  read -r kind args < "$d"
  line=$(cat "$s.line")
  t=$SECONDS
  case "$kind" in
    run)
      : > "$last_output"
      for h in $args; do
        [ -n "${addr[$h]:-}" ] || die "$doc:$line: unknown host $h"
        say "--- $doc:$line on $h:"
        sed 's/^/    /' "$s.body"
        if ! on "$h" bash -euo pipefail -c "cd /root; $(cat "$s.body")" > "$tmp/out" 2>&1; then
          sed 's/^/  | /' "$tmp/out"
          diagnose
          die "$doc:$line: the block failed on $h"
        fi
        sed 's/^/  | /' "$tmp/out"
        cat "$tmp/out" >> "$last_output"
      done ;;
    output)
      while IFS= read -r want; do
        w=$(echo "$want" | tr -s ' ')
        [ -z "${w// /}" ] && continue
        tr -s ' ' < "$last_output" | grep -qF -- "$w" || die "$doc:$line: the output lacks: $want"
      done < "$s.body" ;;
    copy)
      read -r -a spec <<< "$args"
      from=${spec[0]}
      say "--- $doc:$line: copy ${spec[*]}"
      on "${from%%:*}" cat "${from#*:}" > "$tmp/copied" || die "$doc:$line: cannot read $from"
      for to in "${spec[@]:1}"; do
        on "${to%%:*}" bash -c "umask 077; cat > '${to#*:}'" < "$tmp/copied" || die "$doc:$line: cannot write $to"
      done ;;
    wait)
      read -r h seconds cmd <<< "$args"
      say "--- $doc:$line: waiting up to $seconds s on $h for: $cmd"
      if ! wait_until "$seconds" on "$h" bash -c "$cmd" > /dev/null 2>&1; then
        diagnose
        die "$doc:$line: $cmd did not succeed on $h within $seconds s"
      fi ;;
    simulate)
      read -r what h <<< "$args"
      [ "$what" = lose ] || die "$doc:$line: unknown simulation $what"
      say "--- $doc:$line: $h is lost: its node dies, its disk is replaced by a fresh Debian 12 with postgresql-15"
      on "$h" bash -euo pipefail -c '
        for u in $(systemctl list-units --all --plain --no-legend "pgfailover@*" | cut -d" " -f1); do
          systemctl kill --kill-whom=main --signal=SIGKILL "$u" || true
          kill -KILL "$(head -n 1 /var/lib/postgresql/15/main/postmaster.pid)" 2> /dev/null || true
          systemctl disable --now "$u" > /dev/null 2>&1 || true
        done
        systemctl reset-failed
        rm -rf /var/lib/postgresql/15/main* /etc/postgresql/15/main
        pg_createcluster 15 main --start > /dev/null' ;;
    *) die "$doc:$line: unknown step $kind" ;;
  esac
  [ $((SECONDS - t)) -lt 2 ] || say "    ($((SECONDS - t)) s)"
done
say "runbook test passed in $((SECONDS - start)) s"
