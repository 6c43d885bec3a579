{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Port of /metrics, /healthz and /readyz: config.telemetry.metrics_port (default 9090); 0 is refused,
     since the probes need the server. */}}
{{- define "sluice.metricsPort" -}}
{{- $telemetry := .Values.config.telemetry | default dict }}
{{- if hasKey $telemetry "metrics_port" }}
{{- if eq (int $telemetry.metrics_port) 0 }}
{{- fail "config.telemetry.metrics_port: 0 disables /healthz and /readyz, which the probes need" }}
{{- end }}
{{- int $telemetry.metrics_port }}
{{- else }}
{{- 9090 }}
{{- end }}
{{- end }}

{{/* `--processes` as the CLI takes it: a count, or "auto". */}}
{{- define "sluice.processes" -}}
{{- toString .Values.processes }}
{{- end }}

{{/* Fails unless SIGKILL comes after the drain: config.worker.shutdown_grace, plus the supervisor's 5 s margin
     (worker/supervisor.py STOP_MARGIN) when a pod runs several processes. */}}
{{- define "sluice.checkGrace" -}}
{{- $grace := (.Values.config.worker | default dict).shutdown_grace | default 30 }}
{{- $needed := int (ceil $grace) }}
{{- if ne (include "sluice.processes" .) "1" }}
{{- $needed = add $needed 5 }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed config.worker.shutdown_grace (%v, plus 5 s with processes > 1), or SIGKILL cuts the drain short" .Values.terminationGracePeriodSeconds $grace) }}
{{- end }}
{{- end }}

{{/* KEDA and the HPA would both own the replica count. */}}
{{- define "sluice.checkScaling" -}}
{{- if and .Values.keda.enabled .Values.autoscaling.enabled }}
{{- fail "keda.enabled and autoscaling.enabled are mutually exclusive: pick one to own the replica count" }}
{{- end }}
{{- if and .Values.keda.enabled (not (or .Values.keda.sqs .Values.keda.kinesis)) }}
{{- fail "keda.enabled needs at least one trigger in keda.sqs or keda.kinesis" }}
{{- end }}
{{- end }}

{{/* repository@digest when image.digest is set (immutable), else repository:tag (default: appVersion). */}}
{{- define "sluice.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}
