package main

import (
	"context"
	"errors"
	"time"
)

func runScale(ctx context.Context, host string, d time.Duration, out string) error {
	return errors.New("not yet")
}
