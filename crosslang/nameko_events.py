#!/usr/bin/python3
"""nameko-style event dispatcher and event handler, for cross-language tests of Hypha.

They do on the wire what nameko 2.x's EventDispatcher and service-pool
event_handler do (see shared PROTOCOL.md, "Events"), using only the standard
library and kombu, because nameko itself is not installable on the test
machines.

Usage:
    nameko_events.py dispatch --uri URI --source SRC --type TYPE --payload JSON
                              [--header KEY=VALUE ...] [--mandatory]
    nameko_events.py consume --uri URI --source SRC --type TYPE --service NAME
                             --method M [--count N] [--timeout S] [--declare-only]

dispatch prints `DISPATCHED` once the broker confirmed the event. consume
prints `DECLARED` (with --declare-only, then exits) or `READY` once consuming,
then one JSON object per event, and exits 0 after N events. Failures go to
stderr as `ERROR: ...` with exit status 1 (2 for a usage error).
"""

import argparse
import json
import signal
import socket
import sys
import time
import uuid

from amqp.exceptions import AMQPError, ChannelError
from kombu import Connection, Consumer, Exchange, Producer, Queue

HEADER_PREFIX = "nameko."
PERSISTENT = 2
MAX_WORKERS = 10  # nameko's default max_workers, used as the prefetch count
CONFIRM_TIMEOUT = 5.0


def event_exchange(source):
    """nameko.standalone.events.get_event_exchange (recent nameko 2.x): topic,
    durable, not auto-delete, persistent messages."""
    return Exchange("{}.events".format(source), type="topic", durable=True,
                    delivery_mode=PERSISTENT)


def handler_queue(source, event_type, service, method):
    """nameko.events.EventHandler.setup for a SERVICE_POOL handler with
    reliable_delivery=True: durable, auto_delete = not reliable_delivery =
    False, exclusive only for broadcast (False), no queue arguments."""
    return Queue(
        "evt-{}-{}--{}.{}".format(source, event_type, service, method),
        exchange=event_exchange(source),
        routing_key=event_type,
        durable=True,
        auto_delete=False,
        exclusive=False,
    )


def error(msg):
    print("ERROR: {}".format(msg), file=sys.stderr, flush=True)
    return 1


def describe(exc):
    return "{}: {}".format(type(exc).__name__, exc)


def jsonable(value):
    """Header values as py-amqp decodes them, made printable as JSON."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# -- dispatch -------------------------------------------------------------------


def parse_headers(pairs, source):
    """--header KEY=VALUE items as nameko context data. Values are strings,
    except call_id_stack, which is a JSON list. Without one, the stack is that
    of a worker of entrypoint <source>.dispatch: ["<source>.dispatch.<uuid4>"]."""
    context = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError("--header {!r}: want KEY=VALUE".format(pair))
        if key.startswith(HEADER_PREFIX):
            key = key[len(HEADER_PREFIX):]
        if key == "call_id_stack":
            value = json.loads(value)
            if not isinstance(value, list):
                raise ValueError("--header call_id_stack: want a JSON list")
        context[key] = value
    context.setdefault("call_id_stack", ["{}.dispatch.{}".format(source, uuid.uuid4())])
    # nameko HeaderEncoder: every non-null context item as "nameko.<key>".
    return {HEADER_PREFIX + k: v for k, v in context.items() if v is not None}


def dispatch(opts):
    try:
        payload = json.loads(opts.payload)
    except ValueError as exc:
        return error("--payload is not JSON: {}".format(exc))
    try:
        headers = parse_headers(opts.header, opts.source)
    except ValueError as exc:
        return error(str(exc))

    exchange = event_exchange(opts.source)
    # nameko.amqp.publish.Publisher: a producer on a confirm channel
    # (use_confirms=True), json serializer, delivery_mode PERSISTENT,
    # priority 0, mandatory False unless asked.
    conn = Connection(opts.uri, transport_options={"confirm_publish": True})
    try:
        conn.connect()
        producer = Producer(conn.channel())
        producer.publish(
            payload,
            exchange=exchange,
            routing_key=opts.type,
            declare=[exchange],  # the dispatcher declares the exchange too
            serializer="json",  # application/json, utf-8
            delivery_mode=PERSISTENT,
            priority=0,
            mandatory=opts.mandatory,
            headers=headers,
            retry=False,
            timeout=CONFIRM_TIMEOUT,
        )
    except ChannelError as exc:
        if "NO_ROUTE" in str(exc):
            # nameko: UndeliverableMessage
            return error("UndeliverableMessage: {}".format(exc))
        return error(describe(exc))
    except (AMQPError, OSError) as exc:
        return error(describe(exc))
    finally:
        conn.release()
    print("DISPATCHED", flush=True)
    return 0


# -- consume --------------------------------------------------------------------


class Handler:
    """A nameko service-pool event handler: consumes its queue with manual
    ack and prefetch max_workers; each event is acked after it is handled
    (here: printed)."""

    def __init__(self, count):
        self.count = count
        self.received = 0
        self.failure = None
        self.stopping = False

    def on_message(self, message):
        try:
            body = message.decode()  # content type checked against accept=["json"]
        except Exception as exc:
            # nameko cannot handle it either; reject and stop.
            self.failure = "cannot decode event (content_type {!r}): {}".format(
                message.properties.get("content_type"), describe(exc))
            message.reject(requeue=False)
            return
        headers = message.headers or {}
        info = message.delivery_info or {}
        props = message.properties
        print(json.dumps({
            "body": body,
            "headers": {k: jsonable(v) for k, v in headers.items()
                        if k.startswith(HEADER_PREFIX)},
            "message_id": props.get("message_id"),
            "delivery_mode": props.get("delivery_mode"),
            "content_type": props.get("content_type"),
            "content_encoding": props.get("content_encoding"),
            "exchange": info.get("exchange"),
            "routing_key": info.get("routing_key"),
            "redelivered": bool(info.get("redelivered")),
        }, sort_keys=True), flush=True)
        message.ack()
        self.received += 1


def consume(opts):
    queue = handler_queue(opts.source, opts.type, opts.service, opts.method)
    handler = Handler(opts.count)

    def stop(signum, frame):
        handler.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    conn = Connection(opts.uri)
    try:
        conn.connect()
        # Consumer declares the exchange, the queue and the binding, as
        # nameko's QueueConsumer does before it consumes.
        consumer = Consumer(conn.channel(), queues=[queue], accept=["json"],
                            on_message=handler.on_message, no_ack=False)
        if opts.declare_only:
            print("DECLARED", flush=True)
            return 0
        consumer.qos(prefetch_count=MAX_WORKERS)
        consumer.consume()
        print("READY", flush=True)
        deadline = time.monotonic() + opts.timeout
        while handler.received < handler.count and handler.failure is None:
            if handler.stopping:
                return error("stopped by a signal after {} of {} events".format(
                    handler.received, handler.count))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return error("timeout: {} of {} events within {:g} s".format(
                    handler.received, handler.count, opts.timeout))
            try:
                conn.drain_events(timeout=min(0.5, remaining))
            except socket.timeout:
                pass
        if handler.failure is not None:
            return error(handler.failure)
        return 0
    except (AMQPError, OSError) as exc:
        # e.g. PreconditionFailed (406) when the queue exists with other
        # properties or arguments
        return error(describe(exc))
    finally:
        conn.release()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser("dispatch", help="dispatch one event, as nameko's EventDispatcher")
    d.add_argument("--uri", required=True)
    d.add_argument("--source", required=True, help="dispatching service: exchange <SRC>.events")
    d.add_argument("--type", required=True, help="event type (the routing key)")
    d.add_argument("--payload", required=True, help="the event payload, as JSON")
    d.add_argument("--header", action="append", default=[], metavar="KEY=VALUE",
                   help="context data, sent as header nameko.KEY (repeatable)")
    d.add_argument("--mandatory", action="store_true",
                   help="publish mandatory: an unrouted event is an error")

    c = sub.add_parser("consume", help="handle events, as a nameko service-pool event_handler")
    c.add_argument("--uri", required=True)
    c.add_argument("--source", required=True, help="dispatching service")
    c.add_argument("--type", required=True, help="event type")
    c.add_argument("--service", required=True, help="handling service's name")
    c.add_argument("--method", required=True, help="handler method's name")
    c.add_argument("--count", type=int, default=1, help="exit after N events (default 1)")
    c.add_argument("--timeout", type=float, default=30.0,
                   help="give up (exit 1) after S seconds (default 30)")
    c.add_argument("--declare-only", action="store_true",
                   help="declare the exchange, queue and binding, then exit")

    opts = parser.parse_args(argv)
    if opts.command == "dispatch":
        return dispatch(opts)
    if opts.count < 1:
        parser.error("--count must be at least 1")
    return consume(opts)


if __name__ == "__main__":
    sys.exit(main())
