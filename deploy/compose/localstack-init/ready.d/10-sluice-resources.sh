#!/bin/bash
# LocalStack READY hook: the AWS side of the compose stack.
#   s3://sluice-logs          logs land here; ObjectCreated -> sluice-notifications
#   s3://sluice-backup        dead letters (dead_letters.bucket)
#   sluice-notifications      the sqs_s3 source's queue; after 5 receives a message moves to sluice-notifications-dlq
#   sluice-app-logs           the plain sqs source's queue (application log lines), DLQ sluice-app-logs-dlq
#   sluice-replay             one pointer message per dead-letter object (dead_letters.replay_queue_url)
#   kinesis sluice-cloudwatch the kinesis source's stream (2 shards), fed by CloudWatch Logs subscription filters on
#                             the log groups /sluice/demo/app and sluice-demo-vpc-flow
# The Kinesis lease table (sluice-kinesis-leases) is not created here: Sluice creates it on first start.
# Idempotent (create-* on an existing resource with the same attributes succeeds), so a restart is harmless.
# State is LocalStack's own "init" status: GET /_localstack/init/ready (compose's healthcheck reads it).
set -euo pipefail

LOGS_BUCKET=${LOGS_BUCKET:-sluice-logs}
BACKUP_BUCKET=${BACKUP_BUCKET:-sluice-backup}
QUEUE=${QUEUE:-sluice-notifications}
APP_QUEUE=${APP_QUEUE:-sluice-app-logs}
REPLAY_QUEUE=${REPLAY_QUEUE:-sluice-replay}
MAX_RECEIVE_COUNT=${MAX_RECEIVE_COUNT:-5}
STREAM=${STREAM:-sluice-cloudwatch}
STREAM_SHARDS=${STREAM_SHARDS:-2}
LOG_GROUPS=${LOG_GROUPS:-/sluice/demo/app sluice-demo-vpc-flow}
ACCOUNT=${ACCOUNT:-000000000000}

queue_arn() {
  awslocal sqs get-queue-attributes --queue-url "$1" --attribute-names QueueArn \
    --query 'Attributes.QueueArn' --output text
}

# RedrivePolicy is a JSON document inside a JSON string attribute: escape its quotes.
json_in_string() { local doc=$1; printf '%s' "${doc//\"/\\\"}"; }

# A queue with its own DLQ (after MAX_RECEIVE_COUNT receives); prints the queue's URL.
queue_with_dlq() {
  local name=$1 visibility=$2 dlq_url dlq_arn redrive
  dlq_url=$(awslocal sqs create-queue --queue-name "${name}-dlq" --query QueueUrl --output text)
  dlq_arn=$(queue_arn "$dlq_url")
  redrive="{\"deadLetterTargetArn\":\"${dlq_arn}\",\"maxReceiveCount\":\"${MAX_RECEIVE_COUNT}\"}"
  awslocal sqs create-queue --queue-name "$name" \
    --attributes "{\"VisibilityTimeout\":\"${visibility}\",\"RedrivePolicy\":\"$(json_in_string "$redrive")\"}" \
    --query QueueUrl --output text
}

for bucket in "$LOGS_BUCKET" "$BACKUP_BUCKET"; do
  awslocal s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || awslocal s3api create-bucket --bucket "$bucket" >/dev/null
done

queue_url=$(queue_with_dlq "$QUEUE" 300)
queue_arn=$(queue_arn "$queue_url")
app_queue_url=$(queue_with_dlq "$APP_QUEUE" 120)
awslocal sqs create-queue --queue-name "$REPLAY_QUEUE" --query QueueUrl --output text >/dev/null

# On AWS the queue also needs a policy letting s3.amazonaws.com (aws:SourceArn = the logs bucket) send to
# it; LocalStack does not enforce queue policies, so none is set here (deploy/ecs/sluice.yaml has one).
awslocal s3api put-bucket-notification-configuration --bucket "$LOGS_BUCKET" --notification-configuration \
  "{\"QueueConfigurations\":[{\"QueueArn\":\"${queue_arn}\",\"Events\":[\"s3:ObjectCreated:*\"]}]}"

if ! awslocal kinesis describe-stream-summary --stream-name "$STREAM" >/dev/null 2>&1; then
  awslocal kinesis create-stream --stream-name "$STREAM" --shard-count "$STREAM_SHARDS"
fi
awslocal kinesis wait stream-exists --stream-name "$STREAM"
stream_arn=$(awslocal kinesis describe-stream-summary --stream-name "$STREAM" \
  --query 'StreamDescriptionSummary.StreamARN' --output text)

# CloudWatch Logs -> Kinesis. On AWS the role lets logs.amazonaws.com put records on the stream (docs/iam.md);
# LocalStack does not check it.
read -r -a groups <<< "$LOG_GROUPS"
for group in "${groups[@]}"; do
  awslocal logs create-log-group --log-group-name "$group" 2>/dev/null || true
  awslocal logs put-subscription-filter --log-group-name "$group" --filter-name sluice --filter-pattern "" \
    --destination-arn "$stream_arn" --role-arn "arn:aws:iam::${ACCOUNT}:role/cwl-to-kinesis"
done

echo "sluice resources ready: s3://${LOGS_BUCKET} -> ${queue_url}, ${app_queue_url}, ${stream_arn} <- ${LOG_GROUPS}," \
  "backup s3://${BACKUP_BUCKET}"
