// Command kube-apiserver is the test control plane's API server: the upstream program, built from its
// Go module at the version pinned in go.mod, so the tests need no release download.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
