package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/components/requestreply"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// The watermill contender is what a Go user would build instead of Hypha:
// watermill's cqrs command bus and processor with the requestreply component
// (a PubSubBackend with a float64 result), over watermill-amqp/v3's durable
// queue config (durable queues, persistent messages) with publisher confirms
// on, a pool of publishing channels and the server's prefetch at MAX_WORKERS.
//
// requestreply subscribes to a reply topic on every call. Doing that on AMQP
// would declare and consume a queue per call, so the client consumes one
// reply queue of its own and fans replies out in process through a gochannel
// pub/sub keyed by operation id: the cheapest wiring the component allows.

const (
	wmCommandTopic = "wm-calculator-add"
	wmReplyToKey   = "reply_to"
)

// addCommand is the command the watermill contender sends.
type addCommand struct {
	A   float64 `json:"a"`
	B   float64 `json:"b"`
	Pad string  `json:"pad"`
}

func wmConfig(uri string) wmamqp.Config {
	cfg := wmamqp.NewDurableQueueConfig(uri)
	cfg.Publish.ConfirmDelivery = true
	cfg.Publish.ChannelPoolSize = 16
	cfg.Consume.Qos.PrefetchCount = maxWorkers
	return cfg
}

// watermillStart runs the command processor and returns a client's call.
func watermillStart(ctx context.Context, uri string) (caller, func(), error) {
	logger := watermill.NopLogger{}
	cfg := wmConfig(uri)
	var closers []func() error
	stop := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}
	fail := func(err error) (caller, func(), error) {
		stop()
		return nil, nil, fmt.Errorf("watermill: %w", err)
	}

	pub, err := wmamqp.NewPublisher(cfg, logger)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, pub.Close)

	replies := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1}, logger)
	closers = append(closers, replies.Close)
	backend, err := requestreply.NewPubSubBackend(requestreply.PubSubBackendConfig{
		Publisher: pub,
		SubscriberConstructor: func(requestreply.PubSubBackendSubscribeParams) (message.Subscriber, error) {
			return replies, nil
		},
		GenerateSubscribeTopic: func(p requestreply.PubSubBackendSubscribeParams) (string, error) {
			return string(p.OperationID), nil
		},
		GeneratePublishTopic: func(p requestreply.PubSubBackendPublishParams) (string, error) {
			to := p.CommandMessage.Metadata.Get(wmReplyToKey)
			if to == "" {
				return "", errors.New("command without " + wmReplyToKey)
			}
			return to, nil
		},
		Logger: logger,
	}, requestreply.BackendPubsubJSONMarshaler[float64]{})
	if err != nil {
		return fail(err)
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, logger)
	if err != nil {
		return fail(err)
	}
	sub, err := wmamqp.NewSubscriber(cfg, logger)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, sub.Close)
	marshaler := cqrs.JSONMarshaler{}
	processor, err := cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return wmCommandTopic, nil
		},
		SubscriberConstructor: func(cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return sub, nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return fail(err)
	}
	if err := processor.AddHandlers(requestreply.NewCommandHandlerWithResult("add", backend,
		func(_ context.Context, cmd *addCommand) (float64, error) { return cmd.A + cmd.B, nil })); err != nil {
		return fail(err)
	}
	routerDone := make(chan struct{})
	go func() {
		defer close(routerDone)
		_ = router.Run(context.Background())
	}()
	closers = append(closers, func() error {
		err := router.Close()
		<-routerDone
		return err
	})
	select {
	case <-router.Running():
	case <-ctx.Done():
		return fail(ctx.Err())
	}

	// The client's side: one reply queue, fanned out by operation id.
	replyQueue := "wm-replies-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	replySub, err := wmamqp.NewSubscriber(cfg, logger)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, replySub.Close)
	in, err := replySub.Subscribe(context.Background(), replyQueue)
	if err != nil {
		return fail(err)
	}
	go func() {
		for msg := range in {
			_ = replies.Publish(msg.Metadata.Get(requestreply.OperationIDMetadataKey), msg)
			msg.Ack()
		}
	}()
	bus, err := cqrs.NewCommandBusWithConfig(pub, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(cqrs.CommandBusGeneratePublishTopicParams) (string, error) {
			return wmCommandTopic, nil
		},
		OnSend: func(p cqrs.CommandBusOnSendParams) error {
			p.Message.Metadata.Set(wmReplyToKey, replyQueue)
			return nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return fail(err)
	}
	call := func(ctx context.Context, pad string) error {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		r, err := requestreply.SendWithReply[float64](ctx, bus, backend, &addCommand{A: 1, B: 2, Pad: pad})
		if err != nil {
			return err
		}
		if r.Error != nil {
			return r.Error
		}
		if r.HandlerResult != 3 {
			return fmt.Errorf("%w: %v", errBadReply, r.HandlerResult)
		}
		return nil
	}
	return call, stop, nil
}
