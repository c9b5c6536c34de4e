//go:build faults

package faults_test

import (
	"io"
	"log/slog"
)

// quiet is a logger that drops everything.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
