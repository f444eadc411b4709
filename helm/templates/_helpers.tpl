{{/* Names and labels. */}}
{{- define "pfilm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pfilm.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pfilm.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "pfilm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: programmablefilm
{{- end -}}

{{- define "pfilm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pfilm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pfilm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pfilm.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pfilm.image" -}}
{{- $image := index .root.Values.image .which -}}
{{- printf "%s/%s:%s" .root.Values.image.registry $image.repository (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}

{{- define "pfilm.databaseSecret" -}}
{{- default (printf "%s-database" (include "pfilm.fullname" .)) .Values.database.existingSecret -}}
{{- end -}}

{{- define "pfilm.rabbitmqSecret" -}}
{{- default (printf "%s-rabbitmq" (include "pfilm.fullname" .)) .Values.rabbitmq.existingSecret -}}
{{- end -}}

{{- define "pfilm.storageClaim" -}}
{{- default (printf "%s-storage" (include "pfilm.fullname" .)) .Values.storage.existingClaim -}}
{{- end -}}

{{/* Environment shared by the API and the migration step (docs/configuration.md). */}}
{{- define "pfilm.coordinatorEnv" -}}
- name: Database__ConnectionString
  valueFrom:
    secretKeyRef:
      name: {{ include "pfilm.databaseSecret" . }}
      key: {{ .Values.database.existingSecretKey }}
- name: RabbitMq__Uri
  valueFrom:
    secretKeyRef:
      name: {{ include "pfilm.rabbitmqSecret" . }}
      key: {{ .Values.rabbitmq.existingSecretUriKey }}
- name: RabbitMq__Prefix
  value: {{ .Values.rabbitmq.prefix | quote }}
- name: Storage__Root
  value: {{ .Values.storage.mountPath | quote }}
- name: Coordinator__LeaseDuration
  value: {{ .Values.coordinator.leaseDuration | quote }}
- name: Coordinator__SweepInterval
  value: {{ .Values.coordinator.sweepInterval | quote }}
- name: Coordinator__RepublishAfter
  value: {{ .Values.coordinator.republishAfter | quote }}
- name: Coordinator__MaxQueuedPerPool
  value: {{ .Values.coordinator.maxQueuedPerPool | quote }}
- name: Coordinator__Pool
  value: {{ .Values.coordinator.pool | quote }}
- name: Coordinator__FrameRetention
  value: {{ .Values.coordinator.frameRetention | quote }}
{{- range .Values.workers.pools }}
- name: Pricing__Devices__{{ .deviceSku }}__DollarsPerHour
  value: {{ .dollarsPerHour | quote }}
- name: Pricing__Devices__{{ .deviceSku }}__RatedWatts
  value: {{ .ratedWatts | quote }}
{{- end }}
{{- include "pfilm.otelEnv" (dict "root" . "service" "pfilm-api") | nindent 0 }}
{{- end -}}

{{- define "pfilm.otelEnv" -}}
- name: OTEL_SERVICE_NAME
  value: {{ .service | quote }}
{{- if .root.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .root.Values.otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .root.Values.otel.protocol | quote }}
{{- end }}
{{- end -}}
