// Package config loads a Hypha service's config.yaml with koanf: the file (with nameko's ${VAR} and
// ${VAR:default} expressions), HYPHA_<KEY> environment variables and overrides from code, over the
// defaults. It decodes Hypha's own keys into Settings and validates them, keeps every other key for the
// service to read, records where each value came from, and warns of likely typos. It links neither fx
// nor the exporters, so a client program or a CLI can read config cheaply; package framework loads it
// for the services it runs and hands it to them as framework.Config.
//
//	path, err := config.Path(os.Args[1:]) // --config PATH, if given
//	cfg, err := config.Load(path, nil)    // else $HYPHA_CONFIG, else ./config.yaml
//	if err != nil {
//		log.Fatal(err) // names the key and the expected form: config MAX_WORKERS: want a whole number >= 1, got "ten"
//	}
//	for _, w := range cfg.Warnings() {
//		log.Print(w) // config MAX_WORKER is not a Hypha key: did you mean MAX_WORKERS?
//	}
//	b, err := dial.Dial(ctx, cfg.AMQPURI, dial.Settings(cfg.Settings)) // every connection-level key
//	client := rpc.NewClient(b, rpc.ConfigFrom(cfg.Settings))           // every RPC_* key
//	dsn, err := cfg.String("users.db_dsn")     // a service's own key; an error if absent or not text
//	fmt.Println(cfg.Source("MAX_WORKERS"))     // "default", "config.yaml", "$HYPHA_MAX_WORKERS" or "override"
//
// Keys: Hypha's keys, and every key inside Hypha's sections (RPC_RETRY_POLICY, EVENTS, ...), are
// case-insensitive and stored upper-case, so nameko's lower-case spellings work; two spellings with
// different values are an error. A service's keys keep the case they were written in, and are looked
// up exactly or else case-insensitively. An environment override or an override from code matches an
// existing key case-insensitively, and otherwise takes the spelling it was given.
package config
