{{/*
Every object is named after the release. Service names must be DNS-1035
labels (start with a letter), so the release name must be one.
*/}}
{{- define "wordpress.fullname" -}}
{{- $name := .Release.Name -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]{0,51}[a-z0-9])?$" $name) -}}
{{- fail (printf "release name %q must start with a lowercase letter, contain only a-z, 0-9 and '-', and be at most 53 characters (Service names are DNS-1035 labels)" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "wordpress.databaseSecret" -}}
{{- .Values.database.existingSecret | default (printf "%s-database" (include "wordpress.fullname" .)) -}}
{{- end -}}

{{- define "wordpress.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wordpress.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "wordpress.labels" -}}
{{ include "wordpress.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: web
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "wordpress.chart" . }}
{{- end -}}

{{/*
A key from values; if empty, the one already stored in the release's Secret
(lookup returns nothing under `helm template`/lint), else a random one.
Usage: include "wordpress.key" (list $ctx $value "secret-key")
*/}}
{{- define "wordpress.key" -}}
{{- $ctx := index . 0 -}}
{{- $value := index . 1 -}}
{{- $key := index . 2 -}}
{{- if $value -}}
{{- $value -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" $ctx.Release.Namespace (include "wordpress.fullname" $ctx) -}}
{{- if and $existing (hasKey ($existing.data | default dict) $key) -}}
{{- index $existing.data $key | b64dec -}}
{{- else -}}
{{- randAlphaNum 64 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* auth value name -> Secret key and WORDPRESS_* variable */}}
{{- define "wordpress.authKeys" -}}
authKey: AUTH_KEY
secureAuthKey: SECURE_AUTH_KEY
loggedInKey: LOGGED_IN_KEY
nonceKey: NONCE_KEY
authSalt: AUTH_SALT
secureAuthSalt: SECURE_AUTH_SALT
loggedInSalt: LOGGED_IN_SALT
nonceSalt: NONCE_SALT
{{- end -}}
