# airshake.shell: the one I/O loop of device A (after aioquic's asyncio layer): drive()
# runs an Initiator over a link until the event the caller waits for. It is the only
# code that calls the Initiator's receive / datagrams_to_send / timer / handle_timer; the
# firmware, the test devices, the load generators and the benchmarks all use it. Plain
# async code: it runs under MicroPython's asyncio and CPython's alike.
#
# link: the transport, whole messages in and out:
#   async send_message(message)
#   async recv_message(timeout_s) -> bytes, or None when timeout_s passes first
#   optional, for a link that fragments (device.link.Link, PROTOCOL.md §3.6):
#     partial() -> true while part of an inbound message is in
#     async send_acks() -> the number of FRAGMENT_ACKs sent
#     recv_frames: frames received so far
# clock: () -> now, on the clock the Initiator was started with.
# Rules: the shell never interprets a message or an event itself; refused datagrams are
# the core's Dropped events, which reach on_event like every other event.

ACK_ROUNDS = 4     # fragment-ack rounds in a row without a new frame before m1 is resent


async def drive(ini, link, clock, until=None, idle=0, deadline=None, on_event=None,
                on_send=None, on_receive=None, on_acks=None, core=None):
    """Drive ini over link. Every event goes to on_event(event) in order; each datagram
    to on_send(datagram) before it is sent and on_receive(message) before the core gets
    it (logs, counters); on_acks(n) after a round of n fragment acks. core(fn, *args)
    wraps every call into the core (to meter its CPU time); by default calls are direct.

    Returns the first event for which until(event) is true, once the datagrams the core
    queued with it are sent. Returns None when the handshake failed (HandshakeFailed went
    to on_event), when `deadline` (on clock) passed, or when nothing is left to wait for:
    the Initiator has no timer (handshake confirmed, or not started) and no datagram
    came for `idle` seconds."""
    call = core or _direct
    rounds = 0
    heard = -1
    hold = None
    while True:
        found = _events(ini, until, on_event)
        for datagram in ini.datagrams_to_send(clock()):
            if on_send is not None:
                on_send(datagram)
            await link.send_message(datagram)
        if found is not None:
            return found
        if ini.ended:
            return None
        now = clock()
        if deadline is not None and now >= deadline:
            return None
        due = ini.timer()
        if due is None:                  # nothing to resend: wait `idle` for B, once
            wait = idle if deadline is None else min(idle, deadline - now)
            message = await link.recv_message(wait) if wait > 0 else None
            if message is None:
                return None
            _feed(ini, message, clock, call, on_receive)
            continue
        if hold is not None and hold > due:
            due = hold
        wait = due - now
        if deadline is not None and deadline - now < wait:
            wait = deadline - now
        if due - now <= 0:
            # the retransmission timer is due. While part of B's message is in, ask for
            # the missing fragments instead of resending m1 (m2 stays in B's hands)
            frames = getattr(link, "recv_frames", 0)
            if frames != heard:
                rounds = 0               # fragments still arrive: keep pulling
            heard = frames
            if _partial(link) and rounds < ACK_ROUNDS:
                rounds += 1
                sent = await link.send_acks()
                if on_acks is not None:
                    on_acks(sent)
                hold = now + ini.rto
                continue
            hold = None
            call(ini.handle_timer, now)
            continue
        message = await link.recv_message(wait)
        if message is not None:
            hold = None
            _feed(ini, message, clock, call, on_receive)


def _direct(fn, *args):
    return fn(*args)


def _partial(link):
    partial = getattr(link, "partial", None)
    return partial is not None and partial()


def _feed(ini, message, clock, call, on_receive):
    if on_receive is not None:
        on_receive(message)
    call(ini.receive, message, clock())


def _events(ini, until, on_event):
    found = None
    while True:
        e = ini.next_event()
        if e is None:
            return found
        if on_event is not None:
            on_event(e)
        if found is None and until is not None and until(e):
            found = e
