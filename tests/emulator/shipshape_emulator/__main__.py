"""Starts the emulator: ``python -m shipshape_emulator [--host 127.0.0.1] [--port 0]``.

Port 0 picks a free port; the chosen address is printed once the socket accepts connections, so a
harness can wait for that line instead of polling.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from . import extensions
from .control import Control
from .rpcv2_cbor import RpcV2Cbor


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m shipshape_emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args()
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    for extension in extensions.ALL:
        extension.install()
    # moto, then call counting and faults, then RPC v2 CBOR translated to and from what those two speak.
    app = RpcV2Cbor(Control(DomainDispatcherApplication(create_backend_app), extensions.ALL))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    os.environ.setdefault("MOTO_PORT", str(server.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"shipshape-emulator listening on http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
