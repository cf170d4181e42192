"""shipshape's local AWS emulator: moto in server mode, plus what our functions need and moto lacks.

Run it with ``python -m shipshape_emulator [--port 0]``; it prints one line
``shipshape-emulator listening on http://127.0.0.1:<port>`` once it accepts connections. A test suite that
starts an emulator per test runs ``python -m shipshape_emulator --zygote`` once instead and has it fork
each emulator in milliseconds (see ``__main__``).

- ``extensions``: one module per behaviour moto lacks, each citing the AWS documentation it follows and
  exporting the same interface (``install``, ``tick``, ``reset``, ``ENDPOINTS``); ``extensions.ALL`` lists
  them.
- ``control``: call counts per operation and fault injection under ``/_shipshape/``, and the extensions'
  timers, resets and endpoints.
- ``rpcv2_cbor``: the Smithy RPC v2 CBOR protocol, translated for moto.
- ``client``: the emulator from the outside (start it, alone or from a zygote; boto3 clients; control
  helpers), for the pytest fixtures, the demo and the benchmarks.
- ``paging``: pages and opaque paging tokens, as AWS hands them out.
- ``lambda_runtime``: the Lambda Runtime API, to run a function's ``bootstrap`` the way Lambda does.
"""
