#!/bin/bash
# One-shot: import Sluice's OpenSearch Dashboards saved objects (index patterns, visualizations, dashboards) into
# the compose stack's Dashboards, overwriting earlier versions. Also works against any Dashboards:
#   DASHBOARDS_URL=https://dashboards.example.com CURL_AUTH=user:pass ./load-saved-objects.sh
set -euo pipefail

URL=${DASHBOARDS_URL:-http://opensearch-dashboards:5601}
FILE=${SAVED_OBJECTS:-$(dirname "$0")/sluice-saved-objects.ndjson}
auth=()
if [[ -n "${CURL_AUTH:-}" ]]; then auth=(--user "$CURL_AUTH"); fi

for _ in $(seq 1 60); do
  if curl -fsS "${auth[@]}" "$URL/api/status" >/dev/null 2>&1; then break; fi
  sleep 5
done

answer=$(curl -fsS "${auth[@]}" -X POST "$URL/api/saved_objects/_import?overwrite=true" -H "osd-xsrf: true" \
  --form "file=@${FILE}")
echo "$answer"
case $answer in
  *'"success":true'*) echo "saved objects imported from ${FILE}" ;;
  *) echo "import failed" >&2; exit 1 ;;
esac
