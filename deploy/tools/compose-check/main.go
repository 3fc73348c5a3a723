// Command compose-check loads a compose file as `docker compose config` does, with the
// same library (compose-go): validation against the compose-spec JSON schema it embeds,
// interpolation, normalisation, and the checks between services, networks and volumes.
// deploy/check.sh runs it, so the compose file is parsed for real without a Docker engine.
//
//	go run ./compose-check FILE
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check FILE")
		os.Exit(2)
	}
	file := os.Args[1]
	// No environment from the caller: the file must stand on its own.
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithEnv(nil),
		cli.WithName("relec"),
		cli.WithConsistency(true),
	)
	if err == nil {
		var project interface{ ServiceNames() []string }
		project, err = opts.LoadProject(context.Background())
		if err == nil {
			names := project.ServiceNames()
			sort.Strings(names)
			fmt.Printf("%s: valid, %d services: %s\n", file, len(names), strings.Join(names, ", "))
			return
		}
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
	os.Exit(1)
}
