#!/usr/bin/python3
"""A kombu consumer that declares and reads an event handler's queue as nameko does, for cross-language tests.

It does on the wire what nameko 2.14's service-pool event_handler does
(nameko/events.py, EventHandler.setup; shared PROTOCOL.md, "Events"), and
prints every property of each event as kombu received it, which the real
nameko (testdata/nameko) does not show.

Usage:
    nameko_events.py consume --uri URI --source SRC --type TYPE --service NAME
                             --method M [--count N] [--timeout S] [--declare-only]

consume prints `DECLARED` (with --declare-only, then exits) or `READY` once consuming,
then one JSON object per event, and exits 0 after N events. Failures go to
stderr as `ERROR: ...` with exit status 1 (2 for a usage error).
"""

import argparse
import json
import signal
import socket
import sys
import time

from amqp.exceptions import AMQPError
from kombu import Connection, Consumer, Exchange, Queue

HEADER_PREFIX = "nameko."
PERSISTENT = 2
MAX_WORKERS = 10  # nameko's default max_workers, used as the prefetch count


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
    if opts.count < 1:
        parser.error("--count must be at least 1")
    return consume(opts)


if __name__ == "__main__":
    sys.exit(main())
