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

{{/* The ledger (--database-url, env DATABASE_URL) of the operator and of the tenant API: the same
database, since the API reads the keys the operator records and writes usage the operator bills. */}}
{{- define "atlantiplex.databaseEnv" -}}
{{- if eq .Values.database.mode "postgres" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.postgres.secretName is required when database.mode is postgres" .Values.database.postgres.secretName }}
      key: {{ .Values.database.postgres.secretKey }}
{{- else -}}
- name: DATABASE_URL
  value: sqlite:///data/ledger.db?mode=rwc
{{- end }}
{{- end -}}

{{/* The HMAC server key API keys are hashed with (--api-key-hash-key-file), shared by the
operator (it hashes the keys it issues) and the tenant API (it hashes the keys it is shown). */}}
{{- define "atlantiplex.apiKeyHashSecret" -}}
{{- default (printf "%s-api-key-hash" (include "atlantiplex.fullname" .)) .Values.api.keyHashSecret.existingSecret -}}
{{- end -}}
{{- define "atlantiplex.apiKeyHashFile" -}}/etc/atlantiplex/api-key-hash/key{{- end -}}
{{/* The mounted Secret volume, the same in both Deployments: the key's file is always `key`. */}}
{{- define "atlantiplex.apiKeyHashVolume" -}}
- name: api-key-hash
  secret:
    secretName: {{ include "atlantiplex.apiKeyHashSecret" . }}
    items:
      - key: {{ ternary .Values.api.keyHashSecret.key "key" (ne .Values.api.keyHashSecret.existingSecret "") }}
        path: {{ base (include "atlantiplex.apiKeyHashFile" .) }}
{{- end -}}

{{/* The tenant API (`atlantiplex-operator api`). Its pods must not match the operator's selector
(the webhook Service, the PodDisruptionBudget and the NetworkPolicy select name + instance),
hence a name of its own. */}}
{{- define "atlantiplex.api.fullname" -}}
{{- printf "%s-api" (include "atlantiplex.fullname" .) -}}
{{- end -}}

{{- define "atlantiplex.api.serviceAccountName" -}}
{{- default (include "atlantiplex.api.fullname" .) .Values.api.serviceAccount.name -}}
{{- end -}}

{{- define "atlantiplex.api.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-api
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "atlantiplex.api.labels" -}}
{{ include "atlantiplex.api.selectorLabels" . }}
app.kubernetes.io/component: api
app.kubernetes.io/part-of: {{ .Chart.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* api.replicas, or when empty: 2 on PostgreSQL, 1 on SQLite (one file, one API process). */}}
{{- define "atlantiplex.api.replicas" -}}
{{- if kindIs "invalid" .Values.api.replicas -}}
{{- if eq .Values.database.mode "postgres" }}2{{ else }}1{{ end -}}
{{- else -}}
{{- int .Values.api.replicas -}}
{{- end -}}
{{- end -}}

{{/* Values the tenant API cannot run with, refused at install time with the fix. */}}
{{- define "atlantiplex.api.validate" -}}
{{- $v := .Values -}}
{{- if eq $v.database.mode "sqlite" -}}
{{- if gt (int (include "atlantiplex.api.replicas" .)) 1 -}}
{{- fail (printf "api.replicas=%s needs the PostgreSQL ledger: with database.mode=sqlite the tenant API's keys, rate limits and usage live in one SQLite file, which only one API replica may use. Set database.mode=postgres with database.postgres.secretName (a Secret holding the postgres:// URL), or api.replicas=1." (include "atlantiplex.api.replicas" .)) -}}
{{- end -}}
{{- if not $v.database.sqlite.persistence -}}
{{- fail "api.enabled needs the operator's ledger, but database.sqlite.persistence=false puts the SQLite file in an emptyDir of the operator's pod, which the tenant API cannot share. Set database.sqlite.persistence=true, database.mode=postgres, or api.enabled=false." -}}
{{- end -}}
{{- if eq $v.api.rateLimitStore "postgres" -}}
{{- fail "api.rateLimitStore=postgres needs database.mode=postgres (the rate limits live in the PostgreSQL ledger); use auto or memory with SQLite." -}}
{{- end -}}
{{- end -}}
{{- with $v.api.signIn.issuer -}}
{{- if not (hasPrefix "https://" .) -}}
{{- fail (printf "api.signIn.issuer=%s is not an https URL: the identity provider's discovery document and tokens must come over TLS. Set the issuer exactly as the provider names it, e.g. https://idp.example.com/, or empty it to turn web sign-in off." .) -}}
{{- end -}}
{{- if not $v.api.signIn.publicUrl -}}
{{- fail "api.signIn.issuer is set but api.signIn.publicUrl is empty: web sign-in needs the API's public https URL as browsers reach it (the provider sends them back to <publicUrl>/auth/callback). Set api.signIn.publicUrl, e.g. https://api.example.com, and register <publicUrl>/auth/callback at the provider." -}}
{{- end -}}
{{- if not (hasPrefix "https://" $v.api.signIn.publicUrl) -}}
{{- fail (printf "api.signIn.publicUrl=%s is not an https URL: the session cookie is Secure (__Host-), so browsers keep it only over https. Set the https URL browsers reach the API at, e.g. https://api.example.com." $v.api.signIn.publicUrl) -}}
{{- end -}}
{{- end -}}
{{- end -}}
