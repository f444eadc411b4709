#!/usr/bin/env bash
# Read endpoints at a million tasks: seeds 1,000,000 tasks and 10,000,000 ledger rows into a database made by the
# real migrations, starts the API on it and runs 50 concurrent clients per endpoint. Prints a table and one
# reads_p95_ms_<endpoint>=N line per endpoint.
#   bench/reads.sh [--tasks N] [--ledger N] [--seconds S] [--warmup S] [--clients C] [--only ENDPOINT_PREFIX]
# Starts its own throwaway PostgreSQL and RabbitMQ (scripts/services.sh) unless PFILM_TEST_POSTGRES is already set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dotnet build ProgrammableFilm.sln -c Release -nologo -v quiet >/dev/null
if [[ -z ${PFILM_TEST_POSTGRES:-} ]]; then
  dir=$(scripts/services.sh start)
  trap 'scripts/services.sh stop "$dir" >/dev/null 2>&1' EXIT
  eval "$(scripts/services.sh env "$dir")"
fi
dotnet bench/ProgrammableFilm.Bench.Reads/bin/Release/net10.0/ProgrammableFilm.Bench.Reads.dll "$(pwd)" "$@"
