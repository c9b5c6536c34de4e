#!/usr/bin/python3
"""A nameko-style RPC client, for cross-language tests of Hypha.

It talks to RabbitMQ exactly as a nameko 2.x standalone RPC client does (see
shared PROTOCOL.md), using only the standard library and kombu, because nameko
itself is not installable on the test machines.

Usage:
    nameko_client.py --uri AMQP_URI CHECK [CHECK ...]
    nameko_client.py --uri AMQP_URI all

Each check prints one line, `PASS <name>` or `FAIL <name>: <detail>`; the exit
status is 0 when every check passed, 1 otherwise (2 for a usage error).

The class NamekoRpcClient can also be imported by other scripts.
"""

import argparse
import json
import socket
import sys
import time
import uuid

from amqp import spec
from amqp.exceptions import ChannelError
from kombu import Connection, Consumer, Exchange, Producer, Queue

RPC_EXCHANGE = "nameko-rpc"
# nameko: RPC_REPLY_QUEUE_TTL = 300000 (ms); the reply queue outlives a dropped
# connection for five minutes.
RPC_REPLY_QUEUE_TTL = 300000
DEFAULT_TIMEOUT = 10.0
# How long a mandatory publish may wait for its confirm (and so for a
# basic.return that precedes it).
CONFIRM_TIMEOUT = 5.0


class UnknownService(Exception):
    """The mandatory request came back unrouted (nameko.exceptions.UnknownService)."""


class ReplyTimeout(Exception):
    """No reply arrived within the timeout (nameko would wait forever)."""


class RemoteError(Exception):
    """The reply carried an error object; `error` is that object (a dict)."""

    def __init__(self, error):
        super().__init__(error)
        self.error = error


class NamekoRpcClient:
    """A standalone nameko RPC client (nameko.standalone.rpc.ClusterRpcProxy).

    Two connections, as in nameko: the reply listener consumes on its own
    connection, and requests go out through a kombu Producer on a connection
    whose channels are in confirm mode (`transport_options={'confirm_publish':
    True}`, nameko.amqp.publish.get_producer).
    """

    def __init__(self, uri, owner="standalone_rpc_proxy", exchange=RPC_EXCHANGE):
        self.owner = owner
        # The client's own id: nameko 2.14's standalone proxy is a worker of
        # entrypoint "call", so its call ids read "standalone_rpc_proxy.call.<uuid>".
        self.client_id = str(uuid.uuid4())
        self.exchange = Exchange(exchange, type="topic", durable=True)
        self._replies = {}  # correlation_id -> decoded reply body
        self._pending = set()  # correlation ids we still wait for

        # Reply queue as nameko's ReplyListener declares it: name
        # rpc.reply-<owner>-<uuid>, durable, not exclusive, not auto-delete,
        # x-expires=300000, bound to nameko-rpc with routing key = that uuid
        # (the same uuid; the request's reply_to carries it).
        reply_uuid = str(uuid.uuid4())
        self.reply_to = reply_uuid
        self.reply_queue = Queue(
            "rpc.reply-{}-{}".format(owner, reply_uuid),
            exchange=self.exchange,
            routing_key=reply_uuid,
            durable=True,
            exclusive=False,
            auto_delete=False,
            queue_arguments={"x-expires": RPC_REPLY_QUEUE_TTL},
        )

        self._consumer_conn = Connection(uri)
        self._consumer_conn.connect()
        self._consumer = Consumer(
            self._consumer_conn.channel(),
            queues=[self.reply_queue],  # declares exchange, queue and binding
            callbacks=[self._on_reply],
            no_ack=False,  # manual ack, as nameko's QueueConsumer
            accept=["json"],
        )
        self._consumer.consume()

        self._publisher_conn = Connection(
            uri, transport_options={"confirm_publish": True}
        )
        self._publisher_conn.connect()
        self._publish_channel = self._publisher_conn.channel()
        self._producer = Producer(self._publish_channel)

    # -- replies -----------------------------------------------------------

    def _on_reply(self, body, message):
        # nameko ReplyListener.handle_message: ack first, then look up the
        # correlation id; an unknown one is dropped (logged at debug).
        message.ack()
        correlation_id = message.properties.get("correlation_id")
        if correlation_id in self._pending:
            self._pending.discard(correlation_id)
            self._replies[correlation_id] = body

    def _wait_reply(self, correlation_id, timeout):
        deadline = time.monotonic() + timeout
        while correlation_id not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._pending.discard(correlation_id)
                raise ReplyTimeout("no reply within {:g} s".format(timeout))
            try:
                self._consumer_conn.drain_events(timeout=remaining)
            except socket.timeout:
                pass
        return self._replies.pop(correlation_id)

    # -- requests ----------------------------------------------------------

    def call_id_stack(self):
        # One id for the proxy's life, as nameko 2.14's standalone proxy has one worker context.
        return ["{}.call.{}".format(self.owner, self.client_id)]

    def publish_request(self, service, method, args=(), kwargs=None, context=None):
        """Publish one request; return its correlation id.

        Raises UnknownService when the broker returns the mandatory message.
        """
        correlation_id = str(uuid.uuid4())
        # nameko HeaderEncoder: every non-null context item becomes header
        # "nameko.<key>"; a standalone client always has a call_id_stack.
        ctx = {"call_id_stack": self.call_id_stack()}
        ctx.update(context or {})
        headers = {"nameko." + k: v for k, v in ctx.items() if v is not None}
        self._pending.add(correlation_id)
        try:
            # nameko MethodProxy._call -> Publisher.publish: mandatory=True,
            # serializer json (content_type application/json,
            # content_encoding utf-8), delivery_mode 2 (PERSISTENT),
            # priority 0 (Publisher default), no expiration.
            self._producer.publish(
                {"args": list(args), "kwargs": dict(kwargs or {})},
                exchange=self.exchange,
                routing_key="{}.{}".format(service, method),
                mandatory=True,
                serializer="json",
                delivery_mode=2,
                priority=0,
                reply_to=self.reply_to,
                correlation_id=correlation_id,
                headers=headers,
                retry=False,
                timeout=CONFIRM_TIMEOUT,  # py-amqp: also the confirm wait
            )
        except ChannelError as exc:
            self._pending.discard(correlation_id)
            # nameko >= 2.12 (nameko.amqp.publish.Publisher.publish): with
            # py-amqp >= 2 the basic.return, which RabbitMQ sends before the
            # confirm's basic.ack, is raised out of the confirm wait as
            # ChannelError "Basic.return: (312) NO_ROUTE" because no
            # 'basic_return' handler is registered on the channel; nameko maps
            # it to UndeliverableMessage, and MethodProxy to UnknownService.
            if "NO_ROUTE" in str(exc):
                self._drain_trailing_confirm()
                raise UnknownService(service) from exc
            raise
        except BaseException:
            self._pending.discard(correlation_id)
            raise
        return correlation_id

    def _drain_trailing_confirm(self):
        # The exception above left the basic.ack for the returned message
        # unread. Consume it now, or the next publish on this channel would
        # take it for its own confirm (and miss its own basic.return).
        # nameko does not do this; it is only to keep this client in step.
        try:
            self._publish_channel.wait(
                [spec.Basic.Ack, spec.Basic.Nack], timeout=CONFIRM_TIMEOUT
            )
        except socket.timeout:
            pass

    def call(self, service, method, args=(), kwargs=None, context=None,
             timeout=DEFAULT_TIMEOUT):
        """Call service.method; return the result or raise RemoteError,
        UnknownService or ReplyTimeout."""
        correlation_id = self.publish_request(service, method, args, kwargs, context)
        body = self._wait_reply(correlation_id, timeout)
        if not isinstance(body, dict):
            raise RemoteError({"malformed_reply": body})
        if body.get("error"):
            raise RemoteError(body["error"])
        return body.get("result")

    def close(self):
        # nameko leaves the reply queue to expire (x-expires); so do we.
        for conn in (self._consumer_conn, self._publisher_conn):
            try:
                conn.release()
            except Exception:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# -- checks ----------------------------------------------------------------


class CheckFailed(Exception):
    pass


def expect(cond, detail):
    if not cond:
        raise CheckFailed(detail)


def call_error(client, service, method, args=(), kwargs=None):
    """Call and return the error object; fail if the call succeeded."""
    try:
        result = client.call(service, method, args, kwargs)
    except RemoteError as exc:
        return exc.error
    raise CheckFailed("expected an error, got result {}".format(json.dumps(result)))


def expect_error_fields(err):
    keys = set(err) if isinstance(err, dict) else None
    expect(keys == {"exc_type", "exc_path", "exc_args", "value"},
           "error must have exactly exc_type, exc_path, exc_args, value: {}".format(
               json.dumps(err)))


def check_add_positional(client):
    result = client.call("calculator", "add", [1, 2], {})
    expect(result == 3, "expected 3, got {}".format(json.dumps(result)))


def check_add_kwargs(client):
    result = client.call("calculator", "add", [], {"a": 1.5, "b": 2})
    expect(result == 3.5, "expected 3.5, got {}".format(json.dumps(result)))


def check_divide_zero(client):
    err = call_error(client, "calculator", "divide", [1, 0])
    expect_error_fields(err)
    expect(err["exc_type"] == "ZeroDivisionError", "exc_type {!r}".format(err["exc_type"]))
    path = err["exc_path"]
    expect(isinstance(path, str) and "." in path
           and all(part for part in path.split(".")),
           "exc_path is not a dotted name: {!r}".format(path))
    expect(err["exc_args"] == ["division by zero"], "exc_args {!r}".format(err["exc_args"]))
    expect(err["value"] == "division by zero", "value {!r}".format(err["value"]))


def check_method_not_found(client):
    err = call_error(client, "calculator", "nope")
    expect_error_fields(err)
    want = {"exc_type": "MethodNotFound", "exc_path": "nameko.exceptions.MethodNotFound",
            "exc_args": ["nope"], "value": "nope"}
    expect(err == want, "got {}".format(json.dumps(err)))


def check_incorrect_signature(client):
    err = call_error(client, "calculator", "add", [1])
    expect_error_fields(err)
    expect(err["exc_type"] == "IncorrectSignature", "exc_type {!r}".format(err["exc_type"]))
    expect(err["exc_path"] == "nameko.exceptions.IncorrectSignature",
           "exc_path {!r}".format(err["exc_path"]))


def check_unknown_service(client):
    start = time.monotonic()
    try:
        client.publish_request("no_such_service", "method")
    except UnknownService:
        elapsed = time.monotonic() - start
        expect(elapsed <= 5.0, "basic.return took {:.1f} s".format(elapsed))
        return
    except socket.timeout:
        raise CheckFailed("no confirm and no basic.return within 5 s")
    raise CheckFailed("publish was confirmed without a basic.return (NO_ROUTE)")


def check_context_headers(client):
    context = {
        # Sent in place of the generated stack, in the standalone client's form.
        "call_id_stack": client.call_id_stack(),
        "user_id": "u-42",
        "language": "en-gb",
        "custom_key": "custom-value",
    }
    result = client.call("user_service", "calculate_user_score", [],
                         {"user_id": 7, "base_score": 10, "multiplier": 3},
                         context=context)
    want = {"user_id": 7, "score": 30}
    expect(result == want, "expected {}, got {}".format(
        json.dumps(want), json.dumps(result)))


def check_raw_method(client):
    # "uploads" is a Hypha service whose methods are registered with
    # rpc.HandleRaw: its JSON replies and errors are nameko's too.
    result = client.call("uploads", "store", [], {"name": "a.txt", "size": 3})
    want = {"stored": "a.txt", "size": 3}
    expect(result == want, "expected {}, got {}".format(json.dumps(want), json.dumps(result)))
    err = call_error(client, "uploads", "refuse", [], {})
    expect_error_fields(err)
    expect(err["exc_type"] == "QuotaExceeded", "exc_type {!r}".format(err["exc_type"]))
    expect(err["value"] == "no space left", "value {!r}".format(err["value"]))


CHECKS = {
    "add_positional": check_add_positional,
    "add_kwargs": check_add_kwargs,
    "divide_zero": check_divide_zero,
    "method_not_found": check_method_not_found,
    "incorrect_signature": check_incorrect_signature,
    "unknown_service": check_unknown_service,
    "context_headers": check_context_headers,
    "raw_method": check_raw_method,
}


def run_checks(uri, names):
    failed = 0
    try:
        client = NamekoRpcClient(uri)
    except Exception as exc:
        for name in names:
            print("FAIL {}: cannot connect: {}".format(name, exc), flush=True)
        return len(names)
    with client:
        for name in names:
            try:
                CHECKS[name](client)
            except CheckFailed as exc:
                failed += 1
                print("FAIL {}: {}".format(name, exc), flush=True)
            except RemoteError as exc:
                failed += 1
                print("FAIL {}: remote error {}".format(name, json.dumps(exc.error)), flush=True)
            except (ReplyTimeout, UnknownService) as exc:
                failed += 1
                print("FAIL {}: {}: {}".format(name, type(exc).__name__, exc), flush=True)
            except Exception as exc:  # a broken check must not hide the others
                failed += 1
                print("FAIL {}: {}: {}".format(name, type(exc).__name__, exc), flush=True)
            else:
                print("PASS {}".format(name), flush=True)
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uri", required=True, help="AMQP URI, e.g. amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("checks", nargs="+", metavar="CHECK",
                        help="'all' or any of: " + ", ".join(CHECKS))
    opts = parser.parse_args(argv)
    names = list(CHECKS) if "all" in opts.checks else opts.checks
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        parser.error("unknown check(s): {}".format(", ".join(unknown)))
    return 1 if run_checks(opts.uri, names) else 0


if __name__ == "__main__":
    sys.exit(main())
