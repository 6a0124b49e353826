package orders

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSpecBreakingGuard runs .ci/spec-breaking, the check CI runs on
// openapi.yaml, in a throwaway git repository whose last commit changes this
// repository's openapi.yaml: a break fails unless the commit message carries
// an API-Break trailer, and a compatible change passes.
func TestSpecBreakingGuard(t *testing.T) {
	t.Parallel()
	guard, err := filepath.Abs(".ci/spec-breaking")
	require.NoError(t, err)
	spec, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)

	// Edits of openapi.yaml, as old -> new text; each old text must be in
	// the spec, so a test whose edit no longer applies fails instead of
	// comparing a spec with itself.
	const processedAt = `        processed_at:
          type: string
          format: date-time
          nullable: true
          description: Set once background processing has finished; null until then.
`
	removeResponseProperty := [][2]string{
		{processedAt, ""},
		{"updated_at, processed_at, version]", "updated_at, version]"},
	}
	removeEndpoint := [][2]string{{"  /revoke/:\n", "  /revoke-moved/:\n"}}
	addOptionalResponseProperty := [][2]string{{processedAt, processedAt + `        note:
          type: string
          description: A remark for the customer.
`}}

	tests := []struct {
		name    string
		edits   [][2]string
		message string
		pass    bool
		output  string // in the guard's output
	}{
		{
			name:    "removed response property",
			edits:   removeResponseProperty,
			message: "Drop processed_at from orders",
			output:  "removed the required property `processed_at` from the response",
		},
		{
			name:    "removed endpoint",
			edits:   removeEndpoint,
			message: "Move revocation",
			output:  "[api-path-removed-without-deprecation] at",
		},
		{
			name:    "trailer only in the subject",
			edits:   removeEndpoint,
			message: "API-Break: move revocation",
			output:  "does not mark the break as intended",
		},
		{
			name:    "break marked intended",
			edits:   removeResponseProperty,
			message: "Drop processed_at from orders\n\nClients read it from the processing resource now.\n\nAPI-Break: processed_at moved to the processing resource",
			pass:    true,
			output:  "allowed by HEAD's API-Break trailer: processed_at moved to the processing resource",
		},
		{
			name:    "compatible change",
			edits:   addOptionalResponseProperty,
			message: "Orders carry an optional note",
			pass:    true,
			output:  "no breaking change to openapi.yaml since HEAD~1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := t.TempDir()
			git := func(args ...string) {
				t.Helper()
				cmd := exec.Command("git", args...)
				cmd.Dir = repo
				cmd.Env = gitEnv()
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "git %v: %s", args, out)
			}
			git("init", "-q", "-b", "main")
			require.NoError(t, os.WriteFile(filepath.Join(repo, "openapi.yaml"), spec, 0o600))
			git("add", "openapi.yaml")
			git("commit", "-q", "-m", "The contract as it is")

			changed := string(spec)
			for _, e := range tc.edits {
				require.Contains(t, changed, e[0], "the edit no longer applies to openapi.yaml")
				changed = strings.Replace(changed, e[0], e[1], 1)
			}
			require.NoError(t, os.WriteFile(filepath.Join(repo, "openapi.yaml"), []byte(changed), 0o600))
			git("commit", "-q", "-a", "-m", tc.message)

			cmd := exec.Command("bash", guard)
			cmd.Dir = repo
			cmd.Env = gitEnv()
			out, err := cmd.CombinedOutput()
			if tc.pass {
				require.NoError(t, err, "%s", out)
			} else {
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit, "%s", out)
				require.Equal(t, 1, exit.ExitCode(), "%s", out)
			}
			require.Contains(t, string(out), tc.output)
		})
	}
}

// gitEnv is the environment with git's user configuration left out, so a
// developer's settings (signing, hooks, templates) do not change the
// throwaway commits.
func gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=spec test", "GIT_AUTHOR_EMAIL=spec@example.com",
		"GIT_COMMITTER_NAME=spec test", "GIT_COMMITTER_EMAIL=spec@example.com",
	)
}
