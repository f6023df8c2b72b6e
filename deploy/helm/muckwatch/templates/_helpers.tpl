{{- define "muckwatch.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "muckwatch.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "muckwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "muckwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "muckwatch.labels" -}}
{{ include "muckwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The config as mounted: config.city points at the city ConfigMap when one is given. */}}
{{- define "muckwatch.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- if .Values.city.configMap -}}
{{- $_ := set $cfg "city" "/etc/muckwatch/city" -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The port of a host:port listener, e.g. config.metrics.listen. */}}
{{- define "muckwatch.port" -}}
{{- regexReplaceAll "^.*:" . "" -}}
{{- end -}}
