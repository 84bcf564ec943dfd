package main

import (
	"fmt"
	"io"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tokens"
)

// openStore opens the configured token store and warns on w when it keeps
// secrets in an unencrypted file.
func openStore(cfg *config.Config, w io.Writer) (tokens.Store, error) {
	s, err := tokens.OpenStore(cfg.Store.Backend, cfg.Store.Path)
	if err != nil {
		return nil, err
	}
	if wr, ok := s.(interface{ Warning() string }); ok {
		if msg := wr.Warning(); msg != "" {
			fmt.Fprintln(w, msg)
		}
	}
	return s, nil
}
