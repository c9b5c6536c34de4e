package testbroker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/testbroker"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TestMain runs this package's tests in their own vhost.
func TestMain(m *testing.M) { testbroker.Main(m) }

// TestVHostListed checks that the package's vhost exists on the broker.
func TestVHostListed(t *testing.T) {
	v := testbroker.VHost(t)
	if !strings.HasPrefix(v, "hypha-test-testbroker-") {
		t.Errorf("VHost = %q, want prefix hypha-test-testbroker-", v)
	}
	out, err := testbroker.Rabbitmqctl("-q", "list_vhosts")
	if err != nil {
		t.Fatalf("list_vhosts: %v\n%s", err, out)
	}
	if !strings.Contains("\n"+out+"\n", "\n"+v+"\n") {
		t.Fatalf("list_vhosts does not contain %q:\n%s", v, out)
	}
}

// TestConnectAndDeclare connects to URI and declares a queue in the vhost.
func TestConnectAndDeclare(t *testing.T) {
	uri := testbroker.URI(t)
	conn, err := amqp.Dial(uri)
	if err != nil {
		t.Fatalf("dial %s: %v", uri, err)
	}
	defer conn.Close()
	if got := conn.Config.Vhost; got != testbroker.VHost(t) {
		t.Errorf("connected to vhost %q, want %q", got, testbroker.VHost(t))
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("testbroker-probe", false, true, false, false, nil)
	if err != nil {
		t.Fatalf("queue declare: %v", err)
	}
	out, err := testbroker.Rabbitmqctl("-q", "list_queues", "-p", testbroker.VHost(t), "name")
	if err != nil {
		t.Fatalf("list_queues: %v\n%s", err, out)
	}
	if !strings.Contains(out, q.Name) {
		t.Fatalf("queue %q not listed in vhost %s:\n%s", q.Name, testbroker.VHost(t), out)
	}
}

// TestCloseConnections checks that CloseConnections drops connections in
// the package's vhost.
func TestCloseConnections(t *testing.T) {
	conn, err := amqp.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	testbroker.CloseConnections(t)
	select {
	case e := <-closed:
		if e == nil {
			t.Fatal("connection closed without a broker error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("connection still open 30s after CloseConnections")
	}
}
