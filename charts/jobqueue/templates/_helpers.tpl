{{- define "jobqueue.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jobqueue.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "jobqueue.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "jobqueue.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; pass (dict "root" $ "component" "api"). */}}
{{- define "jobqueue.labels" -}}
{{ include "jobqueue.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "jobqueue.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobqueue.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "jobqueue.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "jobqueue.databaseSecret" -}}
{{- default (printf "%s-database" (include "jobqueue.fullname" .)) .Values.database.existingSecret -}}
{{- end -}}

{{- define "jobqueue.jwtSecret" -}}
{{- default (printf "%s-api" (include "jobqueue.fullname" .)) .Values.api.jwtSecret.existingSecret -}}
{{- end -}}

{{- define "jobqueue.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "jobqueue.databaseSecret" . }}
      key: {{ .Values.database.secretKey }}
{{- end -}}

{{- define "jobqueue.podPlacement" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "jobqueue.postgresqlName" -}}
{{- printf "%s-postgresql" (include "jobqueue.fullname" .) -}}
{{- end -}}

{{/* The pods the operator runs for a JobQueue (operator/jobqueue_operator/builders.py labels them). */}}
{{- define "jobqueue.workerPodSelector" -}}
matchLabels:
  app.kubernetes.io/name: jobqueue
matchExpressions:
  - {key: app.kubernetes.io/component, operator: In, values: [worker, reaper]}
{{- end -}}
