{{/* A hook Job running one ordersctl command: call with (dict "root" . "name" "migrate" "weight" "0"
"values" .Values.migrate "args" (list "db" "migrate")). */}}
{{- define "ordersctl.hookJob" -}}
{{- $ := .root }}
{{- $secret := ternary (printf "%s-hook-secrets" (include "ordersctl.fullname" $)) $.Values.secrets.existingSecret (empty $.Values.secrets.existingSecret) }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "ordersctl.fullname" $ }}-{{ .name }}
  labels:
    {{- include "ordersctl.labels" $ | nindent 4 }}
    app.kubernetes.io/component: {{ .name }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: {{ .weight | quote }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ .values.backoffLimit }}
  activeDeadlineSeconds: {{ .values.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "ordersctl.selectorLabels" (list $ .name) | nindent 8 }}
    spec:
      restartPolicy: Never
      {{- include "ordersctl.podCommon" $ | nindent 6 }}
      containers:
        - name: {{ .name }}
          image: {{ include "ordersctl.image" $ }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          command:
            {{- toYaml .args | nindent 12 }}
          env:
            {{- include "ordersctl.env" $ | nindent 12 }}
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "ordersctl.volumeMounts" $ | nindent 12 }}
      volumes:
        {{- include "ordersctl.volumes" (list $ (printf "%s-hook-config" (include "ordersctl.fullname" $)) $secret) | nindent 8 }}
{{- end }}
