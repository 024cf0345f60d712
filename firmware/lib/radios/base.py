# radios/base.py: owns the radio contract every driver implements (mtu, open,
# send, recv with a timeout, close) and RadioError for driver/modem failures.
#
# A Radio moves whole link frames of at most `mtu` bytes. It knows nothing
# about handshake messages: device.link splits messages into frames with the
# core's fragmentation layer sized to `mtu` and reassembles them.


class RadioError(Exception):
    # A driver or modem failure (no answer, bad AT reply, socket error, ...).
    pass


class Radio:
    # Largest frame send() accepts and recv() returns, in bytes. Drivers set
    # this (class attribute or in __init__) before open() returns.
    mtu = 0

    async def open(self):
        # Power up / join / connect. Raises RadioError on failure.
        pass

    async def send(self, frame):
        # Transmit one frame (bytes, len <= mtu). Raises RadioError.
        raise NotImplementedError

    async def recv(self, timeout):
        # Wait up to `timeout` seconds (float) for one frame.
        # Returns the frame bytes, or None on timeout. Raises RadioError.
        raise NotImplementedError

    async def close(self):
        # Release the hardware / socket. Safe to call twice.
        pass
