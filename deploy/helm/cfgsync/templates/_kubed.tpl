{{/* kubed's chart values, refused by name with cfgsync's equivalent, and options given twice. */}}

{{/*
A kubed values file must never be half-read: image, resources and logging settings silently dropped
would install something nobody asked for. Every value of kubed's chart that this chart names differently
fails the render with one line per key found, naming what to write instead (docs/helm.md).
*/}}
{{- define "cfgsync.refuseKubedValues" -}}
{{- $found := list -}}
{{- $image := dict
    "registry" "image.registry"
    "repository" "image.repository (the cfgsync image you built and pushed; kubed's image does not run cfgsync)"
    "tag" "image.tag"
    "resources" "resources"
    "securityContext" "securityContext" -}}
{{- range $parent := list "kubed" "operator" -}}
{{- range $key, $_ := (get $.Values $parent | default dict) -}}
{{- $found = append $found (printf "%s.%s -> %s" $parent $key (get $image $key | default "nothing: remove it")) -}}
{{- end -}}
{{- end -}}
{{- $top := dict
    "imagePullPolicy" "image.pullPolicy"
    "logLevel" "config.logLevel (a name: DEBUG, INFO, WARNING or ERROR)"
    "criticalAddon" "priorityClassName (e.g. system-cluster-critical)"
    "apiserver" "nothing: cfgsync serves no API; remove it"
    "enableAnalytics" "nothing: cfgsync sends nothing anywhere; remove it" -}}
{{- range $key, $instead := $top -}}
{{- if hasKey $.Values $key -}}
{{- $found = append $found (printf "%s -> %s" $key $instead) -}}
{{- end -}}
{{- end -}}
{{- $config := dict
    "configSourceNamespace" "config.sourceNamespace"
    "kubeconfigContent" "config.kubeconfigSecret (a Secret you create, so the kubeconfig stays out of values files)" -}}
{{- range $key, $instead := $config -}}
{{- if hasKey $.Values.config $key -}}
{{- $found = append $found (printf "config.%s -> %s" $key $instead) -}}
{{- end -}}
{{- end -}}
{{- if $found -}}
{{- fail (printf "values of kubed's chart, which this chart names differently (docs/helm.md, \"Coming from kubed's chart\"); write instead:\n  %s" (join "\n  " $found)) -}}
{{- end -}}
{{- end -}}

{{/*
"true" when config.additionalOptions gives the option named by the second argument (with or without
dashes, as kubed's chart wrote them): the chart then leaves out its own flag, so the option appears once
and a kubed values file's resync-period=1m is the period, whatever config.resyncPeriod says.
*/}}
{{- define "cfgsync.optionGiven" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- range $root.Values.config.additionalOptions -}}
{{- if eq (regexReplaceAll "^-*([^=]*).*$" (toString .) "${1}") $name -}}true{{- end -}}
{{- end -}}
{{- end -}}
