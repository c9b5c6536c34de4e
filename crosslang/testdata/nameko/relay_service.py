"""A nameko 2.14 service between two Hypha services: it handles a Hypha event and dispatches one of its own.

nameko sends on every header it received, prefixed (`nameko.<key>`), so the Hypha handler downstream sees
what the first Hypha dispatcher sent. Run with `nameko run --config config.yaml relay_service:PyRelay`.
"""
from nameko.events import EventDispatcher, event_handler


class PyRelay(object):
    name = "py_relay"

    dispatch = EventDispatcher()

    @event_handler("hy_orders", "order_relayed")
    def relay(self, payload):
        self.dispatch("order_forwarded", payload)
