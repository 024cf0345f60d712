# testkit/heap_trace.py: the backend proxy of handshake_client.py's "trace" mode (MicroPython),
# kept out of the client so that its ordinary runs, whose smallest heap make bench measures,
# do not carry it: Tracer(backend) collects garbage before and after every call and keeps
# the largest live heap it saw (peak, bytes).
import gc


class Tracer:
    def __init__(self, inner):
        self._inner = inner
        self.peak = 0

    def __getattr__(self, name):
        fn = getattr(self._inner, name)

        def call(*args):
            gc.collect()
            self.peak = max(self.peak, gc.mem_alloc())
            out = fn(*args)
            gc.collect()
            self.peak = max(self.peak, gc.mem_alloc())
            return out
        return call
