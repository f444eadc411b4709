#!/usr/bin/env bash
# Builds the solution, starts a throwaway PostgreSQL 15 and RabbitMQ on
# 127.0.0.1 (free ports, private temp dir), runs every test, stops everything.
#
#   ./test.sh                      build + all tests
#   ./test.sh --filter 'FullyQualifiedName~Planner'   extra args go to `dotnet test`
#   ./test.sh --services-only      start the services, print the export lines, wait for Ctrl-C
#   PFILM_TEST_KEEP=1 ./test.sh    leave the services running afterwards
#
# Environment given to the tests: see docs/testing.md.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
ROOT=$(pwd)
# shellcheck source=scripts/services.sh
. "$ROOT/scripts/services.sh"

SLN=ProgrammableFilm.sln
CONFIG=Release
services_only=0
test_args=()
for a in "$@"; do
  if [[ $a == --services-only ]]; then services_only=1; else test_args+=("$a"); fi
done
keep=${PFILM_TEST_KEEP:-0}
[[ $keep == 0 || $keep == false ]] && keep=0 || keep=1

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
[[ -t 2 ]] || say() { printf '== %s\n' "$*" >&2; }

SVC_DIR=""
start_pid=""
cleaned=0
cleanup() {
  local rc=$?
  ((cleaned)) && return
  cleaned=1
  trap '' INT TERM # a second Ctrl-C must not interrupt the clean-up
  # Services may still be starting (in the background, during the build).
  [[ -n $start_pid ]] && wait "$start_pid" 2>/dev/null
  [[ -n $SVC_DIR ]] && rm -f "$SVC_DIR.start.log"
  if [[ -n $SVC_DIR && -d $SVC_DIR ]]; then
    if ((keep)) && [[ -f $SVC_DIR/env ]]; then
      say "PFILM_TEST_KEEP=1: services left running. Use them with:"
      echo "  . $SVC_DIR/env" >&2
      say "stop them with:"
      echo "  $ROOT/scripts/services.sh stop $SVC_DIR" >&2
    else
      svc_stop "$SVC_DIR" 2>&1 | sed 's/^/   /' >&2
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

svc_install || exit 1

# Services start in the background while the solution builds.
SVC_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pfilm-test.XXXXXX") || exit 1
t_svc=$(svc_now)
(svc_start "$SVC_DIR" >"$SVC_DIR.start.log" 2>&1) &
start_pid=$!

wait_services() {
  local rc=0
  wait "$start_pid" || rc=$?
  start_pid=""
  if ((rc)) || [[ ! -f $SVC_DIR/env ]]; then
    cat "$SVC_DIR.start.log" >&2
    rm -f "$SVC_DIR.start.log"
    say "FAILED: could not start PostgreSQL/RabbitMQ"
    exit 1
  fi
  rm -f "$SVC_DIR.start.log"
  # shellcheck disable=SC1091
  . "$SVC_DIR/env"
  svc_load "$SVC_DIR"
  say "test services (dir $SVC_DIR)"
  printf '   PostgreSQL 15   127.0.0.1:%s   data %s\n' "$PG_PORT" "$PG_DATA" >&2
  printf '   RabbitMQ 3.10   127.0.0.1:%s   node %s\n' "$RABBIT_PORT" "$RABBIT_NODE" >&2
}

if ((services_only)); then
  wait_services
  printf '   up in %s\n' "$(svc_elapsed "$t_svc")" >&2
  say "paste into another shell (or: . $SVC_DIR/env):"
  cat "$SVC_DIR/env"
  if ((keep)); then exit 0; fi
  say "Ctrl-C stops them"
  while :; do sleep 3600 & wait $!; done
fi

say "dotnet build $SLN -c $CONFIG"
t_build=$(svc_now)
if ! dotnet build "$SLN" -c "$CONFIG" -nologo -v quiet -clp:NoSummary\;ErrorsOnly; then
  say "FAILED: build (see errors above)"
  exit 1
fi
say "built in $(svc_elapsed "$t_build")"

wait_services
printf '   up in %s (in parallel with the build)\n' "$(svc_elapsed "$t_svc")" >&2

say "dotnet test $SLN -c $CONFIG --no-build ${test_args[*]}"
t_test=$(svc_now)
# A test that hangs is killed after ten minutes and named, instead of holding the suite until CI gives up on it
# (the longest test takes under three).
dotnet test "$SLN" -c "$CONFIG" --no-build -nologo --blame-hang-timeout 10m --blame-hang-dump-type none "${test_args[@]}"
rc=$?
if ((rc)); then
  say "FAILED: tests (exit $rc) after $(svc_elapsed "$t_test")"
  exit "$rc"
fi
say "tests passed in $(svc_elapsed "$t_test")"
