{{/* Names and labels. */}}
{{- define "ordersctl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ordersctl.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "ordersctl.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "ordersctl.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "ordersctl.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ordersctl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ordersctl
{{- end }}

{{/* Selector labels of one component (consume, serve, migrate, topics): call with (list . "serve"). */}}
{{- define "ordersctl.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "ordersctl.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "ordersctl.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "ordersctl.secretName" -}}
{{- default (printf "%s-secrets" (include "ordersctl.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{/* Whether a Secret is mounted at all: one of the user's, or one the chart makes of secrets.values. */}}
{{- define "ordersctl.hasSecrets" -}}
{{- if or .Values.secrets.existingSecret .Values.secrets.values }}true{{ end }}
{{- end }}

{{/* The environment every ordersctl container gets: the settings file, the secrets folder, JSON logs. */}}
{{- define "ordersctl.env" -}}
- name: ORDERS_CONFIG
  value: /etc/ordersctl/ordersctl.toml
{{- if include "ordersctl.hasSecrets" . }}
- name: ORDERS_SECRETS_DIR
  value: /etc/ordersctl/secrets
{{- end }}
- name: ORDERS_LOG__FORMAT
  value: json
{{- end }}

{{/* Mounts and volumes of every ordersctl pod; call "ordersctl.volumes" with (list . "<configmap name>"). */}}
{{- define "ordersctl.volumeMounts" -}}
- name: config
  mountPath: /etc/ordersctl/ordersctl.toml
  subPath: ordersctl.toml
  readOnly: true
{{- if include "ordersctl.hasSecrets" . }}
- name: secrets
  mountPath: /etc/ordersctl/secrets
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "ordersctl.volumes" -}}
{{- $ := index . 0 -}}
- name: config
  configMap:
    name: {{ index . 1 }}
{{- if include "ordersctl.hasSecrets" $ }}
- name: secrets
  secret:
    secretName: {{ index . 2 }}
    defaultMode: 0400
{{- end }}
# The only writable place: temporary files and serve's shared metrics folder (--processes > 1).
- name: tmp
  emptyDir:
    sizeLimit: {{ $.Values.tmpSizeLimit }}
{{- end }}

{{/* The pod-level parts every ordersctl pod shares. */}}
{{- define "ordersctl.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
