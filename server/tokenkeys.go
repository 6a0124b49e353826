package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/ordersvc/orders/internal/auth"
	"github.com/ordersvc/orders/internal/config"
)

// tokenKeys reads the keys that sign and verify access tokens. With
// JWT_PRIVATE_KEY_FILE the private key signs, and JWT_SECRET, when still
// set, only verifies (the tokens it signed before the switch keep working
// until they expire); without it JWT_SECRET signs. JWT_PREVIOUS_SECRETS and
// JWT_PREVIOUS_KEY_FILES only verify. Every failure names its variable.
func tokenKeys(cfg config.API, logger *slog.Logger) (*auth.Keys, error) {
	var previous []auth.Key
	for _, s := range cfg.Tokens.PreviousSecrets {
		previous = append(previous, auth.SecretKey(s))
	}
	for _, path := range cfg.Tokens.PreviousKeyFiles {
		key, err := readKeyFile(path, auth.VerificationKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("JWT_PREVIOUS_KEY_FILES: %w", err)
		}
		previous = append(previous, key)
	}
	signing := auth.SecretKey(cfg.Tokens.Secret)
	if cfg.Tokens.PrivateKeyFile != "" {
		key, err := readKeyFile(cfg.Tokens.PrivateKeyFile, auth.PrivateKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("JWT_PRIVATE_KEY_FILE: %w", err)
		}
		if len(cfg.Tokens.Secret) > 0 {
			previous = append(previous, signing)
		}
		signing = key
	}
	keys, err := auth.NewKeys(signing, previous...)
	if err != nil {
		return nil, err
	}
	logger.Info("token keys",
		slog.String("signing_kid", signing.ID()), slog.String("alg", signing.Algorithm().String()),
		slog.Int("verifying_only", len(previous)), slog.Bool("jwks", keys.JWKS() != nil))
	return keys, nil
}

func readKeyFile(path string, parse func([]byte) (auth.Key, error)) (auth.Key, error) {
	data, err := os.ReadFile(path) //nolint:gosec // the operator names the file
	if err != nil {
		return auth.Key{}, err
	}
	key, err := parse(data)
	if err != nil {
		return auth.Key{}, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}
