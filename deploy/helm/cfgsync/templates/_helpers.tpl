{{/* Names, labels and the image reference shared by every template. */}}

{{- define "cfgsync.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name alone when it already contains the chart's name. */}}
{{- define "cfgsync.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "cfgsync.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "cfgsync.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cfgsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cfgsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cfgsync.labels" -}}
{{ include "cfgsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "cfgsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "cfgsync.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* registry/repository:tag, or registry/repository@digest when a digest is given. */}}
{{- define "cfgsync.image" -}}
{{- $repository := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .Values.image.registry) $repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The Lease the replicas elect a leader with. */}}
{{- define "cfgsync.leaseName" -}}
{{- include "cfgsync.fullname" . -}}
{{- end -}}

{{/* A list of strings as CEL string literals: 'a', 'b'. */}}
{{- define "cfgsync.celStrings" -}}
{{- $quoted := list -}}
{{- range . -}}
{{- $quoted = append $quoted (printf "'%s'" .) -}}
{{- end -}}
{{- join ", " $quoted -}}
{{- end -}}

{{/* CEL: the object in .var carries one of the annotations .keys. */}}
{{- define "cfgsync.hasAnyAnnotation" -}}
[{{ include "cfgsync.celStrings" .keys }}].exists(k, k in {{ .var }}.metadata.?annotations.orValue({}))
{{- end -}}

{{/* CEL: the object in .var carries one of the labels .keys. */}}
{{- define "cfgsync.hasAnyLabel" -}}
[{{ include "cfgsync.celStrings" .keys }}].exists(k, k in {{ .var }}.metadata.?labels.orValue({}))
{{- end -}}
