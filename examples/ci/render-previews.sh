#!/usr/bin/env bash
# Renders a cheap preview of shot specs on a ProgrammableFilm farm and downloads each preview's MP4: the part of
# the CI workflow (github-actions.yml) that runs anywhere, and that the integration tests run against a real farm.
#
#   PFILM_SERVER=http://farm:5080 PFILM_API_KEY=pf_... examples/ci/render-previews.sh [SPEC.yaml ...]
#
# With no files, previews every spec (a YAML file with a top-level `shots:`) added or changed since
# $PFILM_BASE_REF (default origin/main). MP4s go to $PFILM_PREVIEW_DIR (default previews/), named
# SPEC-SHOT.mp4, with each spec's pfilm output beside them (SPEC.log).
# Exit code: 0 when every preview rendered (or there was nothing to preview); otherwise the exit code of the
# first `pfilm submit` that failed (README: 1 the job failed, 2 invalid spec, 3 farm unreachable, 4 no such
# project for this key, 6 cancelled, 7 key refused), or 3 when an MP4 could not be downloaded.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PFILM=${PFILM:-$ROOT/pfilm}
OUT=${PFILM_PREVIEW_DIR:-previews}
: "${PFILM_SERVER:?set PFILM_SERVER to the address of the farm API}"
: "${PFILM_API_KEY:?set PFILM_API_KEY to a submitter key of the project}"

specs=("$@")
if ((${#specs[@]} == 0)); then
  base=${PFILM_BASE_REF:-origin/main}
  mapfile -t changed < <(git -C "$ROOT" diff --name-only --diff-filter=AMR "$base"...HEAD -- '*.yaml' '*.yml')
  for file in "${changed[@]}"; do
    grep -q '^shots:' "$ROOT/$file" 2>/dev/null && specs+=("$ROOT/$file")
  done
fi

if ((${#specs[@]} == 0)); then
  echo "No shot specs changed: nothing to preview."
  exit 0
fi

mkdir -p "$OUT"
status=0
for spec in "${specs[@]}"; do
  name=$(basename "${spec%.*}")
  echo "== preview of $spec"
  "$PFILM" submit "$spec" --preview --wait 2>&1 | tee "$OUT/$name.log"
  code=${PIPESTATUS[0]}
  if ((code != 0)); then
    echo "::error file=$spec::preview failed (pfilm exit code $code)"
    ((status == 0)) && status=$code
    continue
  fi

  # `pfilm submit --wait` prints one "MP4 SHOT: URL" line per rendered shot.
  while read -r shot url; do
    if ! curl -fsS -H "X-Api-Key: $PFILM_API_KEY" -o "$OUT/$name-$shot.mp4" "$url"; then
      echo "::error file=$spec::could not download $url"
      ((status == 0)) && status=3
    fi
  done < <(sed -n 's/^MP4 \([^:]*\): \(http.*\)$/\1 \2/p' "$OUT/$name.log")
done

exit "$status"
