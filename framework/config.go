package framework

import "github.com/hypha-go/hypha/config"

// Config is a service's view of config.yaml, as package config loads it: the typed Settings plus the
// service's own keys. A service's constructor asks for it; App.Config returns it.
type Config = config.Config
