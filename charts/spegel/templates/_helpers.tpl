{{/* Chart name. */}}
{{- define "spegel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name when it already contains the chart name. */}}
{{- define "spegel.fullname" -}}
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

{{/* Namespace of every resource. */}}
{{- define "spegel.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "spegel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "spegel.labels" -}}
helm.sh/chart: {{ include "spegel.chart" . }}
{{ include "spegel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels. */}}
{{- define "spegel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spegel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "spegel.serviceAccountName" -}}
{{- default (include "spegel.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* Image reference: digest wins over tag; tag defaults to the appVersion. */}}
{{- define "spegel.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Node IP as containerd sees it: the override, else $(NODE_IP) expanded by the kubelet. */}}
{{- define "spegel.nodeIP" -}}
{{- default "$(NODE_IP)" .Values.service.registry.nodeIp }}
{{- end }}

{{/* containerd mirror targets, in order: own pod (hostPort), any pod (NodePort), extras. */}}
{{- define "spegel.mirrorTargets" -}}
{{- $targets := list }}
{{- if .Values.service.registry.hostPort }}
{{- $targets = append $targets (printf "http://%s:%d" (include "spegel.nodeIP" .) (int .Values.service.registry.hostPort)) }}
{{- end }}
{{- $targets = append $targets (printf "http://%s:%d" (include "spegel.nodeIP" .) (int .Values.service.registry.nodePort)) }}
{{- range .Values.spegel.additionalMirrorTargets }}
{{- $targets = append $targets . }}
{{- end }}
{{- toJson $targets }}
{{- end }}

{{/* DNS name of the headless bootstrap Service. */}}
{{- define "spegel.bootstrapDomain" -}}
{{- printf "%s-bootstrap.%s.svc.%s" (include "spegel.fullname" .) (include "spegel.namespace" .) .Values.clusterDomain }}
{{- end }}

{{/* Name of the Secret holding the admin credentials. */}}
{{- define "spegel.adminSecretName" -}}
{{- default (printf "%s-admin" (include "spegel.fullname" .)) .Values.admin.existingSecret }}
{{- end }}

{{/* Data directory inside the container. */}}
{{- define "spegel.dataDir" -}}
/var/lib/spegel
{{- end }}

{{/* Tolerations, node selector, affinity and priority shared by the DaemonSets. */}}
{{- define "spegel.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
