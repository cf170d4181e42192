"""shipshape's local AWS emulator: moto in server mode, plus what our functions need and moto lacks.

Run it with ``python -m shipshape_emulator [--port 0]``; it prints one line
``shipshape-emulator listening on http://127.0.0.1:<port>`` once it accepts connections.

Extensions (each module cites the AWS documentation it follows):
- ``ecs``: ``ListContainerInstances`` honours ``filter``, ``status``, ``maxResults`` and ``nextToken``.
- ``control``: call counts per operation and fault injection, under ``/_shipshape/``.
- ``lambda_runtime``: the Lambda Runtime API, to run a function's ``bootstrap`` the way Lambda does.
"""
