package main

import (
	"strings"
	"testing"
)

// TestMaskURIList: every password of a list of nodes is hidden.
func TestMaskURIList(t *testing.T) {
	got := maskURI("amqp://u:secret1@n1:5672/v,amqp://u:secret2@n2:5672/v")
	if strings.Contains(got, "secret") || strings.Count(got, masked) != 2 {
		t.Fatalf("maskURI = %q", got)
	}
	base, vhost, err := managementURL("amqp://u:p@n1:5672/prod,amqp://u:p@n2:5672/prod", "")
	if err != nil || base.Host != "n1:15672" || vhost != "prod" {
		t.Fatalf("managementURL = %v, %q, %v; want n1's API and vhost prod", base, vhost, err)
	}
}
