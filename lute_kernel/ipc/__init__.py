"""IPC between the kernel (ZMQ ROUTER) and its workers (ZMQ DEALER): JSON frames plus raw buffers."""
