package timer

import "github.com/hypha-go/hypha/entrypoint"

// Plugin runs a service's timers, the framework's built-in kind
// entrypoint.KindTimer: each tick inside the service's interceptors
// (telemetry's, then the app's).
func Plugin() entrypoint.Plugin { return plugin{} }

type plugin struct{}

func (plugin) Kind() entrypoint.Kind { return entrypoint.KindTimer }

// Serve builds the service's timer server; Once timers' tokens travel
// through s.Broker.
func (plugin) Serve(s *entrypoint.Service) (entrypoint.Server, error) {
	if len(entrypoint.Of[*Timer](s.Registry)) == 0 {
		return nil, nil
	}
	return newServer(s.Broker, s.Registry, serverConfig{
		Service: s.Name, Pool: s.Pool, ParentCallsTracked: s.Settings.ParentCallsTracked, Logger: s.Logger,
		Interceptors: s.Interceptors,
	}), nil
}
