// compose-check loads a compose file with compose-go, the loader `docker compose` itself uses: schema validation,
// interpolation, anchors and merge keys, depends_on and build checks. No Docker engine needed.
//
//	compose-check FILE ENV_FILE   prints the resolved project as JSON, or one error and exit 1
//
// Variables come from ENV_FILE only (not from the process environment), so the result does not depend on the
// machine it runs on.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: compose-check FILE ENV_FILE")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions([]string{os.Args[1]}, cli.WithEnvFiles(os.Args[2]), cli.WithDotEnv)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
