package amqp

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestRefusedTopic: a refusal for want of a topic permission names the topic
// permission and set_topic_permissions; any other refusal the permission of
// set_permissions; other errors pass unchanged.
func TestRefusedTopic(t *testing.T) {
	topicRefusal := &amqp091.Error{Code: amqp091.AccessRefused,
		Reason: "ACCESS_REFUSED - access to topic 'reply.bob.1' in exchange 'nameko-rpc' in vhost '/' refused for user 'alice'"}
	queueRefusal := &amqp091.Error{Code: amqp091.AccessRefused,
		Reason: "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'alice'"}
	other := &amqp091.Error{Code: amqp091.NotFound, Reason: "NOT_FOUND - no exchange 'x' in vhost '/'"}
	const need, topic = `write on exchange "nameko-rpc"`, `write on key "reply.bob.1" of exchange "nameko-rpc"`
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("publishing: %w", topicRefusal),
			`; the user needs the topic permission write on key "reply.bob.1" of exchange "nameko-rpc" (rabbitmqctl set_topic_permissions)`},
		{queueRefusal, `; the user needs the permission write on exchange "nameko-rpc" (rabbitmqctl set_permissions)`},
		{other, `NOT_FOUND - no exchange 'x' in vhost '/'"`},
	} {
		got := refusedTopic(tc.err, need, topic)
		if !strings.HasSuffix(got.Error(), tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("refusedTopic(%v) = %v; want it to end with %q and wrap the error", tc.err, got, tc.want)
		}
	}
}
