# testkit: the test helpers that the tests, the benchmarks and the demo tools share
# (vector loading, handshake pairs, fixture servers, UDP responders, the device server,
# the store servers). A package of its own so that nothing outside tests/ imports tests/.
# Its modules import each other as `from testkit import x` (MicroPython too, with the
# repository root on sys.path).
