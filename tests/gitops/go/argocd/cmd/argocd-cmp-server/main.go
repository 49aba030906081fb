// Command argocd-cmp-server is Argo CD's config-management-plugin server, the program a plugin's
// sidecar runs, built from the argo-cd module at the version pinned in go.mod. Argo CD's release
// build links every component into one binary that picks its command by name; this one holds the
// plugin server only.
package main

import (
	"os"

	"k8s.io/klog/v2"

	cmpserver "github.com/argoproj/argo-cd/v3/cmd/argocd-cmp-server/commands"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func main() {
	// As Argo CD's own entry point does: client-go's logs follow the configured level and format.
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
	command := cmpserver.NewCommand()
	command.SilenceUsage = true
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
