package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os/exec"
)

// vhost is a RabbitMQ virtual host the bench creates for its run and deletes
// after, so that its queues never meet anyone else's on a shared broker.
type vhost struct {
	name string
	uri  string
}

// newVhost creates hypha-bench-<random hex> with rabbitmqctl and grants guest
// on it; host is the broker's host:port.
func newVhost(host string) (*vhost, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	name := "hypha-bench-" + hex.EncodeToString(b)
	if out, err := exec.Command("rabbitmqctl", "add_vhost", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("rabbitmqctl add_vhost %s (run as root, with RabbitMQ running: make broker): %v\n%s", name, err, out)
	}
	v := &vhost{name: name, uri: "amqp://guest:guest@" + host + "/" + url.PathEscape(name)}
	if out, err := exec.Command("rabbitmqctl", "set_permissions", "-p", name, "guest", ".*", ".*", ".*").CombinedOutput(); err != nil {
		_ = v.delete()
		return nil, fmt.Errorf("rabbitmqctl set_permissions on %s: %v\n%s", name, err, out)
	}
	return v, nil
}

func (v *vhost) delete() error {
	if out, err := exec.Command("rabbitmqctl", "delete_vhost", v.name).CombinedOutput(); err != nil {
		return fmt.Errorf("rabbitmqctl delete_vhost %s: %v\n%s", v.name, err, out)
	}
	return nil
}
