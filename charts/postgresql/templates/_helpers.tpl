{{/*
Every object is named after the release. StatefulSet names are limited to 52
characters (the controller-revision-hash label adds 11), and Service names must
be DNS-1035 labels (start with a letter), so the release name must satisfy both.
*/}}
{{- define "postgresql.fullname" -}}
{{- $name := .Release.Name -}}
{{- if gt (len $name) 52 -}}
{{- fail (printf "release name %q is longer than 52 characters (StatefulSet limit)" $name) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name) -}}
{{- fail (printf "release name %q must start with a lowercase letter and contain only a-z, 0-9 and '-' (Service names are DNS-1035 labels)" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "postgresql.headless" -}}
{{- printf "%s-headless" (include "postgresql.fullname" .) -}}
{{- end -}}

{{- define "postgresql.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "postgresql.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "postgresql.labels" -}}
{{ include "postgresql.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: database
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "postgresql.chart" . }}
{{- end -}}

{{/*
A password from values; if empty, the one already stored in the release's
Secret (lookup returns nothing under `helm template`/lint), else a random one.
Usage: include "postgresql.password" (list $ctx $value "secret-key")
*/}}
{{- define "postgresql.password" -}}
{{- $ctx := index . 0 -}}
{{- $value := index . 1 -}}
{{- $key := index . 2 -}}
{{- if $value -}}
{{- $value -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" $ctx.Release.Namespace (include "postgresql.fullname" $ctx) -}}
{{- if and $existing (hasKey ($existing.data | default dict) $key) -}}
{{- index $existing.data $key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}
