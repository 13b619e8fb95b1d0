{{/* Names. Kept to 63 characters: label values and DNS labels allow no more. */}}
{{- define "chartbroker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chartbroker.fullname" -}}
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

{{/* Cluster-scoped names carry the fullname so two releases do not collide. */}}
{{- define "chartbroker.releaseRole" -}}
{{- printf "%s-release" (include "chartbroker.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The broker's own rights in a target namespace (binding Secrets, readiness, lookups, minting the release identity's tokens). */}}
{{- define "chartbroker.targetRole" -}}
{{- printf "%s-target" (include "chartbroker.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ServiceAccount helm runs as in each target namespace. */}}
{{- define "chartbroker.releaseServiceAccount" -}}
{{- printf "%s-release" (include "chartbroker.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chartbroker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chartbroker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: broker
{{- end }}

{{- define "chartbroker.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "chartbroker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: chartbroker
{{- end }}

{{/* The ServiceAccount as an RBAC subject. */}}
{{- define "chartbroker.subject" -}}
- kind: ServiceAccount
  name: {{ include "chartbroker.fullname" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{- define "chartbroker.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "chartbroker.credentialsSecret" -}}
{{- default (printf "%s-credentials" (include "chartbroker.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{- define "chartbroker.uiSecret" -}}
{{- default (printf "%s-ui" (include "chartbroker.fullname" .)) .Values.ui.existingSecret }}
{{- end }}

{{- define "chartbroker.storeKeySecret" -}}
{{- default (printf "%s-store-key" (include "chartbroker.fullname" .)) .Values.store.key.existingSecret }}
{{- end }}

{{- define "chartbroker.tlsSecret" -}}
{{- default (printf "%s-tls" (include "chartbroker.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{- define "chartbroker.catalogConfigMap" -}}
{{- if .Values.catalog.existingConfigMap }}
{{- .Values.catalog.existingConfigMap }}
{{- else if .Values.catalog.files }}
{{- printf "%s-catalog" (include "chartbroker.fullname" .) }}
{{- end }}
{{- end }}

{{- define "chartbroker.servicePort" -}}
{{- if .Values.service.port }}{{ .Values.service.port }}{{ else if .Values.tls.enabled }}443{{ else }}80{{ end }}
{{- end }}

{{/* The OSB endpoint inside the cluster; the port only when not the scheme's default. */}}
{{- define "chartbroker.url" -}}
{{- $scheme := ternary "https" "http" .Values.tls.enabled }}
{{- $port := include "chartbroker.servicePort" . | int }}
{{- $host := printf "%s.%s.svc.cluster.local" (include "chartbroker.fullname" .) .Release.Namespace }}
{{- if or (and .Values.tls.enabled (eq $port 443)) (and (not .Values.tls.enabled) (eq $port 80)) }}
{{- printf "%s://%s" $scheme $host }}
{{- else }}
{{- printf "%s://%s:%d" $scheme $host $port }}
{{- end }}
{{- end }}

{{- define "chartbroker.defaultNamespace" -}}
{{- if .Values.defaultNamespace }}
{{- .Values.defaultNamespace }}
{{- else if .Values.targetNamespaces }}
{{- first .Values.targetNamespaces }}
{{- else }}
{{- fail "defaultNamespace is empty and targetNamespaces lists none: set one of them" }}
{{- end }}
{{- end }}

{{/* Refusals that values.schema.json cannot express. */}}
{{- define "chartbroker.validate" -}}
{{- if and (eq .Values.store.type "redb") (ne (int .Values.replicas) 1) }}
{{- fail "store.type redb is a single-writer file: replicas must be 1 (use store.type kube for more)" }}
{{- end }}
{{- if and .Values.catalog.existingConfigMap .Values.catalog.files }}
{{- fail "set catalog.existingConfigMap or catalog.files, not both" }}
{{- end }}
{{- if and .Values.tls.clientCA (not .Values.tls.enabled) }}
{{- fail "tls.clientCA (mTLS) needs tls.enabled" }}
{{- end }}
{{- if and .Values.tls.certManager.enabled (not .Values.tls.enabled) }}
{{- fail "tls.certManager.enabled needs tls.enabled" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (not .Values.networkPolicy.apiServerCIDRs) }}
{{- fail "networkPolicy.apiServerCIDRs is empty: with the policy on, helm could not reach the API server" }}
{{- end }}
{{- if and .Values.registration.serviceCatalog.enabled .Values.tls.enabled (not .Values.registration.serviceCatalog.caBundle) }}
{{- fail "registration.serviceCatalog.caBundle is empty: Service Catalog must verify the broker's certificate" }}
{{- end }}
{{- end }}

{{/* The platforms file (trust per credential): .Values.platforms, then
     provider-osb's credential when its registration is on. Empty when
     there is nothing to say. */}}
{{- define "chartbroker.platforms" -}}
{{- $list := list }}
{{- range .Values.platforms }}
{{- $list = append $list . }}
{{- end }}
{{- with .Values.registration.providerOsb }}
{{- if .enabled }}
{{- $entry := dict "name" .username "identity" "platform" "deprovision_poll" "gone" }}
{{- $ns := .namespaces | default $.Values.targetNamespaces }}
{{- if $ns }}
{{- $_ := set $entry "namespaces" $ns }}
{{- end }}
{{- $list = append $list $entry }}
{{- end }}
{{- end }}
{{- if $list }}
{{- toYaml (dict "platforms" $list) }}
{{- end }}
{{- end }}
