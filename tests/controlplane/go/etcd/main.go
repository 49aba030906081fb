// Command etcd is the test control plane's storage: the upstream etcd server, built from its Go module
// at the version pinned in go.mod.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
