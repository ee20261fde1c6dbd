#!/usr/bin/env bash
# Lints the SAM deployment (deploy/template.yaml) with cfn-lint, pinned in scripts/python-env.sh
# and installed in its own venv under $KASS_CACHE. Fails on any error or warning (informational
# findings are printed but do not fail). Idempotent, and offline once the venv is there.
#
# Two passes:
#   1. cfn-lint on the SAM template itself. cfn-lint 1.x validates SAM resources against SAM's
#      schemas but no longer runs the SAM transform, so it never sees the resources SAM
#      generates (roles, permissions, the bucket's notification configuration).
#   2. The template through the SAM translator (the library CloudFormation's
#      AWS::Serverless-2016-10-31 transform is built on), local CodeUri folders replaced by a
#      stand-in S3 URI as `sam deploy` does after uploading them, then cfn-lint on the
#      resulting plain CloudFormation. This pass catches SAM errors the schema misses and
#      circular dependencies (E3004) such as bucket -> notification permission -> function ->
#      role -> bucket.
#
#   bash scripts/validate-deploy.sh [TEMPLATE...]   # default: deploy/template.yaml
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
. scripts/python-env.sh

# Installed into the cfn-lint venv next to cfn-lint (which no longer depends on it).
SAM_TRANSLATOR_SPEC="aws-sam-translator==1.115.0"

venv="$KASS_CACHE/cfn-lint-venv"
py="$venv/bin/python"
cfn_lint_version="${CFN_LINT_SPEC##*==}"
translator_version="${SAM_TRANSLATOR_SPEC##*==}"
# ensure_venv checks `cfn_lint.__version__`, but cfn-lint's module is `cfnlint` and its version
# lives in `cfnlint.version`: check that here, and call ensure_venv (which then installs) only
# when the pinned version is missing.
have_cfn_lint() {
  "$py" -c "import sys, cfnlint.version as v; sys.exit(v.__version__ != '$cfn_lint_version')" \
    2>/dev/null
}
have_translator() {
  "$py" -c "import sys, samtranslator as s; sys.exit(s.__version__ != '$translator_version')" \
    2>/dev/null
}
if ! have_cfn_lint; then
  ensure_venv "$venv" "$CFN_LINT_SPEC"
  have_cfn_lint || { echo "cfn-lint $cfn_lint_version did not install in $venv" >&2; exit 1; }
fi
if ! have_translator; then
  echo "installing $SAM_TRANSLATOR_SPEC in $venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$SAM_TRANSLATOR_SPEC" >&2
  have_translator || { echo "$SAM_TRANSLATOR_SPEC did not install in $venv" >&2; exit 1; }
fi

templates=("$@")
[ ${#templates[@]} -gt 0 ] || templates=(deploy/template.yaml)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --non-zero-exit-code warning: exit non-zero on errors and warnings, not on informational.
lint() { "$venv/bin/cfn-lint" --non-zero-exit-code warning -- "$@"; }

for template in "${templates[@]}"; do
  echo "== cfn-lint $cfn_lint_version: $template" >&2
  lint "$template"

  translated="$work/$(basename "${template%.*}").translated.json"
  echo "== SAM translator $translator_version, then cfn-lint: $template" >&2
  # No AWS call is made: the region is only needed for ARNs SAM builds itself.
  AWS_DEFAULT_REGION=us-east-1 "$py" - "$template" >"$translated" <<'EOF'
import json
import sys

from cfnlint.decode import decode
from samtranslator.parser.parser import Parser
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.translator import Translator

template, errors = decode(sys.argv[1])
if errors or template is None:
    for error in errors:
        print(f"{sys.argv[1]}: {error}", file=sys.stderr)
    sys.exit(1)
template = json.loads(json.dumps(template))  # plain dicts and strings
for resource in template.get("Resources", {}).values():
    props = resource.get("Properties") or {}
    if resource.get("Type") == "AWS::Serverless::Function":
        uri = props.get("CodeUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            props["CodeUri"] = "s3://sam-package-bucket/code.zip"
try:
    translated = Translator(managed_policy_map={}, sam_parser=Parser()).translate(
        template, parameter_values={}
    )
except InvalidDocumentException as e:
    for cause in e.causes:
        print(f"{sys.argv[1]}: SAM transform: {cause.message}", file=sys.stderr)
    sys.exit(1)
json.dump(translated, sys.stdout, indent=1)
EOF
  lint "$translated"
done
echo "cfn-lint: no errors or warnings" >&2
