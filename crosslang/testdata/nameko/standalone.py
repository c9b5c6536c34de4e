"""nameko 2.14's standalone RPC proxy and event dispatcher, driven by the Go tests.

    python3 standalone.py URI rpc CALLS_JSON [CONTEXT_DATA_JSON]
        CALLS_JSON is a list of [service, method, args, kwargs]; prints one JSON line per call:
        {"result": ...} or {"error": {"raised", "exc_type", "value"}}: the class nameko raised, and for its RemoteError what
        it keeps (exc_type and value).
    python3 standalone.py URI dispatch SOURCE TYPE PAYLOAD_JSON
"""
import json
import sys

from nameko.exceptions import RemoteError
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy


def main(argv):
    uri, command = argv[1], argv[2]
    config = {"AMQP_URI": uri}
    if command == "rpc":
        calls = json.loads(argv[3])
        context_data = json.loads(argv[4]) if len(argv) > 4 else None
        with ClusterRpcProxy(config, context_data=context_data, timeout=20) as proxy:
            for service, method, args, kwargs in calls:
                try:
                    out = {"result": getattr(getattr(proxy, service), method)(*args, **kwargs)}
                except RemoteError as exc:
                    out = {"error": {"raised": "RemoteError", "exc_type": exc.exc_type, "value": exc.value}}
                except Exception as exc:
                    # nameko raises its own registered exceptions (MethodNotFound,
                    # IncorrectSignature, ...) as themselves, not as RemoteError.
                    out = {"error": {"raised": type(exc).__name__, "value": str(exc)}}
                sys.stdout.write(json.dumps(out) + "\n")
                sys.stdout.flush()
    elif command == "dispatch":
        dispatch = event_dispatcher(config)
        dispatch(argv[3], argv[4], json.loads(argv[5]))
        sys.stdout.write("DISPATCHED\n")
    else:
        sys.stderr.write("unknown command %r\n" % command)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
