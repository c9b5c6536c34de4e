"""nameko 2.14 event handlers of each handler type, for events a Hypha dispatcher sends.

Each handler prints one line `EVENT <json>` on stdout: the handler, the payload and the context data nameko
took from the event's headers. Run with `nameko run --config config.yaml event_service:PyListener`.
"""
import json
import sys

from nameko.events import BROADCAST, SERVICE_POOL, SINGLETON, event_handler
from nameko.extensions import DependencyProvider


class Worker(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx


def report(handler, worker, payload):
    line = json.dumps({"handler": handler, "payload": payload, "data": dict(worker.data),
                       "call_id_stack": worker.call_id_stack})
    sys.stdout.write("EVENT %s\n" % line)
    sys.stdout.flush()


class PyListener(object):
    name = "py_listener"

    worker = Worker()

    @event_handler("hy_orders", "order_created", handler_type=SERVICE_POOL)
    def on_pool(self, payload):
        report("on_pool", self.worker, payload)

    @event_handler("hy_orders", "order_created", handler_type=SINGLETON)
    def on_singleton(self, payload):
        report("on_singleton", self.worker, payload)

    @event_handler("hy_orders", "order_created", handler_type=BROADCAST, reliable_delivery=False)
    def on_broadcast(self, payload):
        report("on_broadcast", self.worker, payload)
