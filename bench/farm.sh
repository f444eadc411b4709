#!/usr/bin/env bash
# Coordinator benchmark: the example shot's wall time in embedded and farm mode, and the coordinator's overhead per
# task against the raw PostgreSQL commit and RabbitMQ round trip measured in the same process.
#   bench/farm.sh                 everything; the last line is farm_tasks_per_second=X
#   bench/farm.sh --throughput    only the baselines and the end-to-end throughput run
#   bench/farm.sh --plan          only the planning of a 100,010-task job, five times
#   bench/farm.sh --idle          only ready → claimed with idle workers, in parts
#   bench/farm.sh --share         only the fair share of two projects weighted 3:1 over a minute, default bundles
#   bench/farm.sh --diffusion     only the diffusion batch against the engine alone
# Starts its own throwaway PostgreSQL and RabbitMQ (scripts/services.sh) unless PFILM_TEST_POSTGRES is already set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dotnet build ProgrammableFilm.sln -c Release -nologo -v quiet >/dev/null
if [[ -z ${PFILM_TEST_POSTGRES:-} ]]; then
  dir=$(scripts/services.sh start)
  trap 'scripts/services.sh stop "$dir" >/dev/null 2>&1' EXIT
  eval "$(scripts/services.sh env "$dir")"
fi
dotnet bench/ProgrammableFilm.Bench.Farm/bin/Release/net10.0/ProgrammableFilm.Bench.Farm.dll "$(pwd)" "$@"
