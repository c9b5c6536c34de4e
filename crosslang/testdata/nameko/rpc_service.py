"""A nameko 2.14 service that the Go tests call with rpc.Client.

Run with `nameko run --config config.yaml rpc_service:PyService`.
"""
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc


class Worker(DependencyProvider):
    """Gives the handler its own worker context, to report what nameko kept of the request's headers."""

    def get_dependency(self, worker_ctx):
        return worker_ctx


class PyService(object):
    name = "py_service"

    worker = Worker()
    calculator = RpcProxy("calculator")

    @rpc
    def echo(self, value):
        return value

    @rpc
    def greet(self, name, greeting="hello"):
        return "%s, %s" % (greeting, name)

    @rpc
    def fail(self, message):
        raise ValueError(message)

    @rpc
    def context(self):
        """Returns the context data nameko took from the request, and this worker's call-id stack."""
        return {"data": dict(self.worker.data), "call_id_stack": self.worker.call_id_stack}

    @rpc
    def relay(self, a, b):
        """Calls calculator.multiply (a Hypha service) from inside a nameko worker."""
        return self.calculator.multiply(a=a, b=b)


class PyMixed(object):
    """The Python instance of a service whose other instance is Go."""
    name = "py_mixed"

    @rpc
    def greet(self, name):
        return "hello, %s" % name
