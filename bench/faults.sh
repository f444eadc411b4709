#!/usr/bin/env bash
# Fault script: runs each fault against a real farm (one API process, several worker processes, PostgreSQL, RabbitMQ)
# with a fresh job per fault and prints a markdown table (for docs/reliability.md): jobs completed, frames missing from
# the MP4s (ffprobe), attempts billed twice (ledger), seconds from the fault to the job's success, and for lost
# workers the time from the kill to the task running again.
#
#   bench/faults.sh                                   every scenario (about 7 minutes when all recover)
#   bench/faults.sh --scenarios baseline,kill-worker  a subset, in that order
#   bench/faults.sh --lease 10 --timeout 180 --workers 3 --moments 10 --keep
#
# Scenarios: baseline kill-worker kill-all-workers rabbitmq-app-restart rabbitmq-node-restart postgres-restart
#            postgres-outage duplicate-delivery cancel-retry kill-api
# --lease sets Coordinator__LeaseDuration (default 10 s here, not the 30 s production default, so runs stay short);
# --timeout is per job; --moments is how many kill moments kill-worker spreads over a run; --keep keeps the run folder
# (process logs, rendered shots). The table goes to stdout, progress to stderr. Exit code 0 only if every scenario passed.
#
# Starts its own throwaway PostgreSQL and RabbitMQ (scripts/services.sh), since it stops and restarts them; they are
# stopped at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/services.sh install
# The services boot while the solution builds.
svc_out=$(mktemp)
scripts/services.sh start >"$svc_out" &
svc_pid=$!
dir=""
cleanup() {
  wait "$svc_pid" 2>/dev/null || true
  dir=$(cat "$svc_out" 2>/dev/null || true)
  rm -f "$svc_out"
  [[ -n $dir ]] && scripts/services.sh stop "$dir" >/dev/null 2>&1
  return 0
}
trap cleanup EXIT
dotnet build ProgrammableFilm.sln -c Release -nologo -v quiet >&2
wait "$svc_pid"
dir=$(cat "$svc_out")
eval "$(scripts/services.sh env "$dir")"
dotnet bench/ProgrammableFilm.Bench.Faults/bin/Release/net10.0/ProgrammableFilm.Bench.Faults.dll "$(pwd)" "$@"
