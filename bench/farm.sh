#!/usr/bin/env bash
# Coordinator benchmark: the example shot's wall time in embedded and farm mode, and the coordinator's overhead per
# task against the raw PostgreSQL commit and RabbitMQ round trip measured in the same process.
#   bench/farm.sh                 everything; the last line is farm_tasks_per_second=X
#   bench/farm.sh --throughput    only the baselines and the end-to-end throughput run
#   bench/farm.sh --plan          only the planning of a 100,010-task job, five times
#   bench/farm.sh --idle          only ready → claimed with idle workers, in parts
#   bench/farm.sh --share         only the fair share of two projects weighted 3:1 over a minute, default bundles
#   bench/farm.sh --diffusion     only the diffusion batch against the engine alone
#   bench/farm.sh --no-reads      everything but bench/reads.sh (which a full run ends with, on the same servers:
#                                 read endpoints at 1,000,000 tasks and 10,000,000 ledger rows, planning 100k and 1M
#                                 tasks through the API; about 9 minutes, most of it seeding)
# Starts its own throwaway PostgreSQL and RabbitMQ (scripts/services.sh) unless PFILM_TEST_POSTGRES is already set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dotnet build ProgrammableFilm.sln -c Release -nologo -v quiet >/dev/null
if [[ -z ${PFILM_TEST_POSTGRES:-} ]]; then
  dir=$(scripts/services.sh start)
  trap 'scripts/services.sh stop "$dir" >/dev/null 2>&1' EXIT
  eval "$(scripts/services.sh env "$dir")"
fi
if [[ $# -gt 0 ]]; then
  farm_args=("$@")
  [[ $* == --no-reads ]] && farm_args=()
  dotnet bench/ProgrammableFilm.Bench.Farm/bin/Release/net10.0/ProgrammableFilm.Bench.Farm.dll "$(pwd)" "${farm_args[@]}"
  exit
fi
# The reads come after the farm's own measurements: seeding a million tasks leaves the database server busy for a while.
farm_out=$(mktemp)
dotnet bench/ProgrammableFilm.Bench.Farm/bin/Release/net10.0/ProgrammableFilm.Bench.Farm.dll "$(pwd)" | tee "$farm_out"
echo
dotnet bench/ProgrammableFilm.Bench.Reads/bin/Release/net10.0/ProgrammableFilm.Bench.Reads.dll "$(pwd)"
grep '^farm_tasks_per_second=' "$farm_out" | tail -n 1
rm -f "$farm_out"
