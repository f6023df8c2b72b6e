package main

import (
	"errors"
	"fmt"

	"github.com/muckwatch/muckwatch/api"
)

// cmdToken makes a bearer token for the API: the token goes to its holder, the hashed entry into
// the environment variable api.tokens_env names (MUCKWATCH_API_TOKENS by default).
func cmdToken(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: muckwatch token ROLE NAME (roles: squad, supervisor, analyst, admin)")
	}
	token, entry, err := api.NewToken(api.Role(args[0]), args[1])
	if err != nil {
		return err
	}
	fmt.Printf("token (give it to %s; it is not stored anywhere):\n  %s\n", args[1], token)
	fmt.Printf("entry (add it to MUCKWATCH_API_TOKENS, comma-separated):\n  %s\n", entry)
	return nil
}
