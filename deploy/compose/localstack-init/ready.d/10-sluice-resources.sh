#!/bin/bash
# LocalStack READY hook: the AWS side of the compose stack.
#   s3://sluice-logs          logs land here; ObjectCreated -> sluice-notifications
#   s3://sluice-backup        dead letters (dead_letters.bucket)
#   sluice-notifications      the worker's queue; after 5 receives a message moves to sluice-notifications-dlq
#   sluice-replay             one pointer message per dead-letter object (dead_letters.replay_queue_url)
# Idempotent (create-* on an existing resource with the same attributes succeeds), so a restart is harmless.
# State is LocalStack's own "init" status: GET /_localstack/init/ready (compose's healthcheck reads it).
set -euo pipefail

LOGS_BUCKET=${LOGS_BUCKET:-sluice-logs}
BACKUP_BUCKET=${BACKUP_BUCKET:-sluice-backup}
QUEUE=${QUEUE:-sluice-notifications}
DLQ=${DLQ:-sluice-notifications-dlq}
REPLAY_QUEUE=${REPLAY_QUEUE:-sluice-replay}
MAX_RECEIVE_COUNT=${MAX_RECEIVE_COUNT:-5}

queue_arn() {
  awslocal sqs get-queue-attributes --queue-url "$1" --attribute-names QueueArn \
    --query 'Attributes.QueueArn' --output text
}

for bucket in "$LOGS_BUCKET" "$BACKUP_BUCKET"; do
  awslocal s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || awslocal s3api create-bucket --bucket "$bucket" >/dev/null
done

dlq_url=$(awslocal sqs create-queue --queue-name "$DLQ" --query QueueUrl --output text)
dlq_arn=$(queue_arn "$dlq_url")

# RedrivePolicy is a JSON document inside a JSON string attribute: escape its quotes.
json_in_string() { local doc=$1; printf '%s' "${doc//\"/\\\"}"; }

redrive="{\"deadLetterTargetArn\":\"${dlq_arn}\",\"maxReceiveCount\":\"${MAX_RECEIVE_COUNT}\"}"
queue_url=$(awslocal sqs create-queue --queue-name "$QUEUE" \
  --attributes "{\"VisibilityTimeout\":\"300\",\"RedrivePolicy\":\"$(json_in_string "$redrive")\"}" \
  --query QueueUrl --output text)
queue_arn=$(queue_arn "$queue_url")

awslocal sqs create-queue --queue-name "$REPLAY_QUEUE" --query QueueUrl --output text

# On AWS the queue also needs a policy letting s3.amazonaws.com (aws:SourceArn = the logs bucket) send to
# it; LocalStack does not enforce queue policies, so none is set here.
awslocal s3api put-bucket-notification-configuration --bucket "$LOGS_BUCKET" --notification-configuration \
  "{\"QueueConfigurations\":[{\"QueueArn\":\"${queue_arn}\",\"Events\":[\"s3:ObjectCreated:*\"]}]}"

echo "sluice resources ready: s3://${LOGS_BUCKET} -> ${queue_url} (DLQ ${dlq_arn}), backup s3://${BACKUP_BUCKET}"
