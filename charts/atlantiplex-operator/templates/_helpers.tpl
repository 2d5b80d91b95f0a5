{{/* One operator per cluster: names default to the chart name, not <release>-<chart>. */}}
{{- define "atlantiplex.fullname" -}}
{{- default .Chart.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "atlantiplex.serviceAccountName" -}}
{{- default (include "atlantiplex.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "atlantiplex.webhookService" -}}
{{- printf "%s-webhook" (include "atlantiplex.fullname" .) -}}
{{- end -}}

{{- define "atlantiplex.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "atlantiplex.labels" -}}
{{ include "atlantiplex.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "atlantiplex.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Names the operator itself uses (fixed in its code). */}}
{{- define "atlantiplex.webhookTlsSecret" -}}atlantiplex-operator-webhook-tls{{- end -}}
{{- define "atlantiplex.webhookConfiguration" -}}atlantiplex-operator{{- end -}}
{{- define "atlantiplex.leaseName" -}}atlantiplex-operator-leader{{- end -}}

{{- define "atlantiplex.certManagerSecret" -}}
{{- printf "%s-webhook-cert" (include "atlantiplex.fullname" .) -}}
{{- end -}}

{{- define "atlantiplex.sqliteClaim" -}}
{{- default (printf "%s-data" (include "atlantiplex.fullname" .)) .Values.database.sqlite.existingClaim -}}
{{- end -}}

{{/* SQLite on a ReadWriteOnce volume: every replica must run where the volume is attached. */}}
{{- define "atlantiplex.sqliteSingleNode" -}}
{{- if and (eq .Values.database.mode "sqlite") .Values.database.sqlite.persistence (not (has "ReadWriteMany" .Values.database.sqlite.accessModes)) -}}true{{- end -}}
{{- end -}}
