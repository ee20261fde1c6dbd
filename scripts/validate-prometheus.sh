#!/usr/bin/env bash
# Checks kass's Prometheus and Grafana assets with Prometheus's own tool, promtool (unpacked by
# scripts/install-prometheus.sh under $KASS_CACHE; no root, no service):
#   1. deploy/prometheus/prometheus.yml: `promtool check config` (which also loads the rule
#      files it names, relative to its own directory);
#   2. deploy/prometheus/rules/*.yml: `promtool check rules`;
#   3. deploy/prometheus/tests/*.yml: `promtool test rules` (every alert fires and stays quiet
#      where it should, every recording rule's value);
#   4. deploy/grafana/kass.json: valid JSON, the dashboard's shape (unique panel ids, the
#      DS_PROMETHEUS datasource and `source` variables, every panel on that datasource with at
#      least one query), and every query accepted by promtool: the `expr`s, Grafana's variables
#      substituted ($__rate_interval -> 1m, $__interval and $__range -> 5m, $source -> .*), are
#      written as recording rules into a temporary rule file for `promtool check rules`;
#   5. every kass_* metric named by the rules, their tests and the dashboard is one
#      pipeline/src/telemetry.rs defines (a histogram's _bucket/_sum/_count series included), so
#      a renamed metric cannot leave a silent alert or an empty panel behind.
#
#   bash scripts/validate-prometheus.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
. scripts/install-prometheus.sh

promtool="$KASS_PROMTOOL"
echo "== $("$promtool" --version 2>&1 | head -n 1)" >&2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== promtool check config deploy/prometheus/prometheus.yml" >&2
"$promtool" check config deploy/prometheus/prometheus.yml

echo "== promtool check rules deploy/prometheus/rules/*.yml" >&2
"$promtool" check rules deploy/prometheus/rules/*.yml

echo "== promtool test rules deploy/prometheus/tests/*.yml" >&2
"$promtool" test rules deploy/prometheus/tests/*.yml

echo "== deploy/grafana/kass.json: shape and metric names" >&2
# Writes the dashboard's queries as a rule file (YAML is a superset of JSON) for promtool.
python3 - deploy/grafana/kass.json pipeline/src/telemetry.rs "$work/grafana-rules.yml" \
  deploy/prometheus/rules/*.yml deploy/prometheus/tests/*.yml <<'EOF'
import json
import re
import sys

dashboard_path, telemetry_path, rules_out, *rule_texts = sys.argv[1:]
errors = []

try:
    with open(dashboard_path) as f:
        dashboard = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"{dashboard_path}: not valid JSON: {e}")

# Metric names kass defines: every "kass_..." string literal of telemetry.rs.
with open(telemetry_path) as f:
    defined = set(re.findall(r'"(kass_[a-z0-9_]+)"', f.read()))
if not defined:
    sys.exit(f"{telemetry_path}: no kass_* metric names found")
known = defined | {f"{name}{suffix}" for name in defined for suffix in ("_bucket", "_sum", "_count")}
METRIC = re.compile(r"(?<![\w:/.-])kass_[a-z0-9_]+(?![\w.])")  # not file names


def check_names(text, where):
    for name in sorted(set(METRIC.findall(text))):
        if name not in known:
            errors.append(f"{where}: metric {name} is not defined in {telemetry_path}")


for path in rule_texts:
    with open(path) as f:
        check_names(f.read(), path)

if not isinstance(dashboard.get("schemaVersion"), int):
    errors.append(f"{dashboard_path}: no integer schemaVersion")
if not dashboard.get("uid") or not dashboard.get("title"):
    errors.append(f"{dashboard_path}: uid and title are required")

variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
ds = variables.get("DS_PROMETHEUS")
if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    errors.append(f"{dashboard_path}: no Prometheus datasource variable DS_PROMETHEUS")
source = variables.get("source")
if not source or source.get("type") != "query":
    errors.append(f"{dashboard_path}: no `source` query variable")
    source = {}
DS_UID = "${DS_PROMETHEUS}"

# Grafana's variables, replaced by values Prometheus accepts.
SUBSTITUTIONS = [
    (r"\$\{__rate_interval\}|\$__rate_interval\b", "1m"),
    (r"\$\{__interval\}|\$__interval\b", "5m"),
    (r"\$\{__range\}|\$__range\b", "5m"),
    (r"\$\{source(?::[a-z]+)?\}|\$source\b", ".*"),
]


def substitute(expr):
    for pattern, value in SUBSTITUTIONS:
        expr = re.sub(pattern, value, expr)
    return expr


rules = []
# The variable's query: label_values(SELECTOR, LABEL); SELECTOR must be valid PromQL.
query = source.get("query")
if isinstance(query, dict):
    query = query.get("query")
m = re.fullmatch(r"\s*label_values\((.+),\s*([a-zA-Z_]\w*)\s*\)\s*", query or "")
if source and not m:
    errors.append(f"{dashboard_path}: variable `source`: not a label_values(SELECTOR, LABEL) query: {query!r}")
elif m:
    check_names(m.group(1), f"{dashboard_path}: variable source")
    rules.append({"record": "grafana_variable_source", "expr": m.group(1)})


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))  # a collapsed row holds its panels


ids = set()
count = 0
for panel in walk(dashboard.get("panels", [])):
    pid = panel.get("id")
    where = f"{dashboard_path}: panel {pid} ({panel.get('title')!r})"
    if not isinstance(pid, int) or pid in ids:
        errors.append(f"{where}: missing or duplicate id")
    ids.add(pid)
    if panel.get("type") == "row":
        continue
    if (panel.get("datasource") or {}).get("uid") != DS_UID:
        errors.append(f"{where}: datasource is not {DS_UID}")
    targets = panel.get("targets") or []
    if not targets:
        errors.append(f"{where}: no query")
    ref_ids = set()
    for target in targets:
        ref = target.get("refId")
        if not ref or ref in ref_ids:
            errors.append(f"{where}: missing or duplicate refId {ref!r}")
        ref_ids.add(ref)
        if (target.get("datasource") or {}).get("uid", DS_UID) != DS_UID:
            errors.append(f"{where} {ref}: datasource is not {DS_UID}")
        expr = (target.get("expr") or "").strip()
        if not expr:
            errors.append(f"{where} {ref}: empty expr")
            continue
        check_names(expr, f"{where} {ref}")
        promql = substitute(expr)
        if "$" in promql:
            errors.append(f"{where} {ref}: unknown Grafana variable in {expr!r}")
            continue
        rules.append({"record": f"grafana_panel_{pid}_{ref}", "expr": promql})
        count += 1

if count == 0:
    errors.append(f"{dashboard_path}: no panel queries")
if errors:
    sys.exit("\n".join(errors))
with open(rules_out, "w") as f:
    json.dump({"groups": [{"name": "grafana-kass-json", "rules": rules}]}, f, indent=1)
print(f"{dashboard_path}: {count} panel queries, {len(ids)} panels; metric names all in {telemetry_path}",
      file=sys.stderr)
EOF

echo "== promtool check rules: deploy/grafana/kass.json's queries" >&2
if ! "$promtool" check rules "$work/grafana-rules.yml"; then
  echo "deploy/grafana/kass.json: promtool rejects a query (rule grafana_panel_<id>_<refId>):" >&2
  cat "$work/grafana-rules.yml" >&2
  exit 1
fi
echo "prometheus config, rules, rule tests and the Grafana dashboard: OK" >&2
