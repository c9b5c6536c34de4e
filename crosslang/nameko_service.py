#!/usr/bin/python3
"""A nameko-style RPC service, for cross-language tests of Hypha.

It serves RPC requests exactly as a nameko 2.x service does on the wire (see
shared PROTOCOL.md), using only the standard library and kombu, because nameko
itself is not installable on the test machines.

Usage:
    nameko_service.py --uri AMQP_URI --service NAME [--max-seconds N]

Prints `READY` on stdout (flushed) once it consumes from rpc-<NAME>. Runs
until SIGTERM/SIGINT or until --max-seconds (default 120) have passed, then
exits 0. Diagnostics go to stderr.

Methods:
    echo(value)    -> value
    greet(name)    -> "hello, <name>"
    fail(message)  -> error ValueError(message)  (exc_path builtins.ValueError)
    headers()      -> the request's nameko.* headers, prefix stripped
"""

import argparse
import inspect
import json
import signal
import socket
import sys
import time

from kombu import Connection, Consumer, Exchange, Producer, Queue

RPC_EXCHANGE = "nameko-rpc"
MAX_WORKERS = 10  # nameko's default max_workers, used as the prefetch count
HEADER_PREFIX = "nameko."
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


# -- nameko.exceptions -------------------------------------------------------
# Defined here with nameko's module path, so that serialize() below gives
# the same exc_path as nameko ("nameko.exceptions.MethodNotFound", ...).


class MethodNotFound(Exception):
    pass


class IncorrectSignature(Exception):
    pass


class MalformedRequest(Exception):
    pass


class UnserializableValueError(Exception):
    # nameko.exceptions.UnserializableValueError: no args, the repr in str().
    def __init__(self, value):
        try:
            self.repr_value = repr(value)
        except Exception:
            self.repr_value = "[__repr__ failed]"
        super().__init__()

    def __str__(self):
        return "Unserializable value: `{}`".format(self.repr_value)


for _cls in (MethodNotFound, IncorrectSignature, MalformedRequest,
             UnserializableValueError):
    _cls.__module__ = "nameko.exceptions"


def safe_for_serialization(value):
    """nameko.exceptions.safe_for_serialization: strings kept, dicts and
    iterables walked, anything else stringified."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {safe_for_serialization(k): safe_for_serialization(v)
                for k, v in value.items()}
    if hasattr(value, "__iter__"):
        return list(map(safe_for_serialization, value))
    try:
        return str(value)
    except Exception:
        return "[__unicode__ failed]"


def serialize(exc):
    """nameko.exceptions.serialize: the four-field error object."""
    cls = type(exc)
    return {
        "exc_type": cls.__name__,
        "exc_path": "{}.{}".format(cls.__module__, cls.__name__),
        "exc_args": list(map(safe_for_serialization, exc.args)),
        "value": safe_for_serialization(exc),
    }


# -- the service ---------------------------------------------------------------


class Service:
    """The RPC methods. A new instance per request, like a nameko worker;
    `context_data` holds the request's context (nameko.* headers)."""

    rpc_methods = ("echo", "greet", "fail", "headers")

    def __init__(self, context_data):
        self.context_data = context_data

    def echo(self, value):
        return value

    def greet(self, name):
        return "hello, {}".format(name)

    def fail(self, message):
        raise ValueError(message)

    def headers(self):
        return dict(self.context_data)


def check_signature(fn, args, kwargs):
    # nameko Entrypoint.check_signature: getcallargs on the unbound method
    # with None for self, before any worker runs.
    try:
        inspect.getcallargs(fn, None, *args, **kwargs)
    except TypeError as exc:
        raise IncorrectSignature(str(exc))


def decode_body(message):
    """The request body as a Python value.

    nameko 2.x crashes on a request without content_type and drops one with a
    content type it does not accept; like Hypha, this service assumes JSON
    when content_type is missing and reports any other type as an error.
    """
    content_type = message.properties.get("content_type") or "application/json"
    if content_type != "application/json":
        raise MalformedRequest("unsupported content type {!r}".format(content_type))
    # py-amqp already decodes the body to str when content_encoding is set.
    body = message.body
    try:
        if isinstance(body, (bytes, bytearray)):
            body = bytes(body).decode(message.properties.get("content_encoding") or "utf-8")
        return json.loads(body)
    except (ValueError, LookupError) as exc:
        raise MalformedRequest("cannot decode request: {}".format(exc))


class RpcServer:
    def __init__(self, uri, service_name, exchange=RPC_EXCHANGE):
        self.service_name = service_name
        self.exchange = Exchange(exchange, type="topic", durable=True)
        self.stopping = False

        # nameko RpcConsumer: queue rpc-<service>, durable, bound to
        # nameko-rpc with <service>.*; every method shares it.
        self.queue = Queue(
            "rpc-{}".format(service_name),
            exchange=self.exchange,
            routing_key="{}.*".format(service_name),
            durable=True,
            exclusive=False,
            auto_delete=False,
        )

        # As in nameko, consuming and publishing use separate connections;
        # replies go through a Producer on a confirm channel (Responder has
        # use_confirms = True).
        self.consumer_conn = Connection(uri)
        self.consumer_conn.connect()
        self.publisher_conn = Connection(uri, transport_options={"confirm_publish": True})
        self.publisher_conn.connect()
        self.producer = Producer(self.publisher_conn.channel())

        channel = self.consumer_conn.channel()
        self.consumer = Consumer(
            channel,
            queues=[self.queue],  # declares exchange, queue and binding
            on_message=self.handle_message,  # raw message: we decode ourselves
            no_ack=False,  # manual ack
        )
        # nameko QueueConsumer: prefetch = max_workers.
        self.consumer.qos(prefetch_count=MAX_WORKERS)

    def start(self):
        self.consumer.consume()

    # nameko RpcConsumer.handle_message + Rpc.handle_message + worker +
    # Responder.send_response, run inline (one request at a time).
    def handle_message(self, message):
        routing_key = message.delivery_info.get("routing_key", "")
        result, error = None, None
        try:
            body = decode_body(message)
            # RpcConsumer.get_provider_for_method: the whole routing key must
            # be <service>.<method>; otherwise MethodNotFound(last segment).
            method_name = routing_key.split(".")[-1]
            if (routing_key != "{}.{}".format(self.service_name, method_name)
                    or method_name not in Service.rpc_methods):
                raise MethodNotFound(method_name)
            # Rpc.handle_message: args and kwargs are both required.
            try:
                args, kwargs = body["args"], body["kwargs"]
            except (KeyError, TypeError):
                raise MalformedRequest("Message missing `args` or `kwargs`")
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise MalformedRequest("Message missing `args` or `kwargs`")
            fn = getattr(Service, method_name)
            check_signature(fn, args, kwargs)
            # HeaderDecoder.unpack_message_headers: every nameko.* header,
            # prefix stripped, custom keys included.
            headers = message.headers or {}
            context_data = {k[len(HEADER_PREFIX):]: v for k, v in headers.items()
                            if k.startswith(HEADER_PREFIX)}
            result = getattr(Service(context_data), method_name)(*args, **kwargs)
        except Exception as exc:
            result, error = None, serialize(exc)

        # Responder.send_response: a result that cannot be serialized becomes
        # UnserializableValueError and the service keeps running.
        try:
            json.dumps(result)
        except Exception:
            result, error = None, serialize(UnserializableValueError(result))

        reply_to = message.properties.get("reply_to")
        if reply_to:
            self.send_reply(reply_to, message.properties.get("correlation_id"),
                            {"result": result, "error": error})
        else:
            # nameko 2.x crashes here; Hypha runs the method and sends nothing.
            print("request on {} without reply_to: no reply sent".format(routing_key),
                  file=sys.stderr, flush=True)
        # The request is acked only after the reply is published.
        message.ack()

    def send_reply(self, reply_to, correlation_id, body):
        # nameko replies on nameko-rpc with routing key = reply_to. Hypha
        # also answers RabbitMQ direct reply-to on the default exchange.
        exchange = "" if reply_to.startswith(DIRECT_REPLY_TO) else self.exchange
        self.producer.publish(
            body,
            exchange=exchange,
            routing_key=reply_to,
            correlation_id=correlation_id,
            serializer="json",  # application/json, utf-8
            delivery_mode=2,  # Publisher default PERSISTENT
            priority=0,  # Publisher default
            retry=False,
            timeout=10,
        )

    def run(self, max_seconds):
        deadline = time.monotonic() + max_seconds
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                print("max-seconds reached, exiting", file=sys.stderr, flush=True)
                break
            try:
                self.consumer_conn.drain_events(timeout=min(0.5, remaining))
            except socket.timeout:
                pass

    def close(self):
        try:
            self.consumer.cancel()
        except Exception:
            pass
        for conn in (self.consumer_conn, self.publisher_conn):
            try:
                conn.release()
            except Exception:
                pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uri", required=True, help="AMQP URI, e.g. amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--service", required=True, help="service name (queue rpc-<NAME>)")
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="exit after this many seconds (default 120)")
    opts = parser.parse_args(argv)

    try:
        server = RpcServer(opts.uri, opts.service)
    except Exception as exc:
        print("ERROR: cannot start: {}: {}".format(type(exc).__name__, exc),
              file=sys.stderr, flush=True)
        return 1

    def stop(signum, frame):
        server.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    try:
        server.start()
        print("READY", flush=True)
        server.run(opts.max_seconds)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
