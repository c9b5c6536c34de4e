package amqp

import (
	"errors"
	"fmt"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// refused adds to err, when it is RabbitMQ's ACCESS_REFUSED (403), which
// permission the user lacks: RabbitMQ's own text ("access to queue 'q' in
// vhost 'v' refused for user 'u'") does not say. need names it, as
// `configure on queue "rpc-x"`.
func refused(err error, need string) error {
	var amqpErr *amqp091.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.AccessRefused {
		return err
	}
	return fmt.Errorf("%w; the user needs the permission %s (rabbitmqctl set_permissions)", err, need)
}

// refusedTopic is refused for a binding to, or a publish on, an exchange
// that may be a topic exchange, where RabbitMQ refuses too for want of a
// topic permission on the routing key ("access to topic 'k' in exchange
// 'x'"): then topic names it, as `read on key "k" of exchange "x"`.
func refusedTopic(err error, need, topic string) error {
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.AccessRefused && strings.Contains(amqpErr.Reason, "access to topic") {
		return fmt.Errorf("%w; the user needs the topic permission %s (rabbitmqctl set_topic_permissions)", err, topic)
	}
	return refused(err, need)
}

// exchangeName is how RabbitMQ's permissions name the exchange ex.
func exchangeName(ex string) string {
	if ex == "" {
		return "amq.default"
	}
	return ex
}
