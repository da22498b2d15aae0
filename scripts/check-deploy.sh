#!/usr/bin/env bash
# Checks the deployment artefacts without a cluster or a Docker engine:
# Kubernetes manifests against the API schemas (kubernetes-validate, from
# PyPI, in a virtualenv made here), the compose file (docker-compose
# config), and the alert rules (promtool, when installed; the test suite
# parses them and checks their metric names either way).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/ci-venv
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
fi
manifests=$(ls deploy/k8s/*.yaml | grep -v kustomization.yaml)
# The oldest Kubernetes the manifests support (preStop sleep) and the newest.
for version in 1.30.0 1.37.0; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" $manifests
done
echo "kubernetes manifests: valid (1.30, 1.37)"

if command -v docker-compose >/dev/null; then
  docker-compose -f docker-compose.yml config --quiet
  echo "docker-compose.yml: valid"
else
  echo "docker-compose not installed; compose file not checked (apt-get install docker-compose)"
fi

if command -v promtool >/dev/null; then
  promtool check rules deploy/prometheus/alerts.yml
else
  echo "promtool not installed; alert rules checked by the test suite only (apt-get install prometheus)"
fi
