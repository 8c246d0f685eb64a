"""IPC between the kernel (ZMQ ROUTER) and its workers (ZMQ DEALER): a token frame, JSON, raw buffers.

``protocol`` (frames of one message) uses ``bounded_json`` (parsing with limits) and ``schema``
(field types); ``admission`` (token first, ranks bound) and ``connections`` (whose connections
closed) are the server's bookkeeping; ``tcp`` holds what the TCP transport adds (one interface,
CURVE, in-loop ZAP); ``server`` and ``client`` are the two ends. See docs/adr/0002-ipc-protocol.md.
"""
