package amqp

import (
	"errors"
	"fmt"

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

// exchangeName is how RabbitMQ's permissions name the exchange ex.
func exchangeName(ex string) string {
	if ex == "" {
		return "amq.default"
	}
	return ex
}
