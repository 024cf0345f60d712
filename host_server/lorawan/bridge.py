# host_server.lorawan.bridge: B's MQTT application integration with a LoRaWAN network
# server (ChirpStack v4 or The Things Stack v3; topics and JSON in .formats). It
# subscribes to the application's uplinks and hands the FRMPayload of each new uplink on
# the airshake FPort to B's dispatcher as a datagram from the device's pseudo address
# (ADDR_PREFIX + DevEUI or TTS device ID, FPort): the network path only, never the
# airshake identity (that is ID_A, checked by the handshake). B's datagrams for such an
# address leave as downlinks, paced by .pacing (one per uplink, a fresher one replacing a
# pending one; The Things Stack's down/replace also replaces its queue).
# The broker going away never stops B: it reconnects with backoff (0.5 s doubling to
# 30 s), logging one line when the link goes down and one when it is back.
from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

import aiomqtt

from host_server.errors import UserError
from host_server.lorawan import formats
from host_server.lorawan.pacing import ClassAPacer
from host_server.lorawan.settings import LorawanConfig

ADDR_PREFIX = "lorawan:"
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STOP_GRACE = 2.0        # seconds stop() gives the MQTT loop (twice) to end


def pseudo_address(device: str, fport: int) -> tuple[str, int]:
    return (ADDR_PREFIX + device, fport)


def owns(addr: Any) -> bool:
    return isinstance(addr, tuple) and isinstance(addr[0], str) \
        and addr[0].startswith(ADDR_PREFIX)


class LorawanBridge:
    owns = staticmethod(owns)     # is addr one of this bridge's pseudo addresses?

    def __init__(self, cfg: LorawanConfig, deliver: Callable[[bytes, Any], None], log: Any,
                 identifier: str) -> None:
        self.cfg = cfg
        self.deliver = deliver            # B's dispatcher.datagram(data, addr)
        self.log = log
        self.identifier = identifier      # the MQTT client ID (a persistent session)
        self.topics = formats.Topics(cfg.kind, cfg.application, cfg.tenant)
        self.pacer = ClassAPacer(gated=cfg.kind == "chirpstack")
        self.connected = False
        self.connects = 0
        self.dropped = 0                  # unusable messages on the uplink topic
        self.outbox: dict[str, bytes] = {}   # device -> the downlink to publish next
        self._wake = asyncio.Event()
        self.tls = _tls_context(cfg) if cfg.tls else None
        # QoS 1 where the broker has it; The Things Stack's MQTT server is QoS 0 only
        self.qos = 0 if cfg.kind == "tts" else 1
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- B's side ----------------------------------------------------------------------
    def send(self, data: bytes, addr: Any) -> None:
        """B's datagram for a pseudo address: a downlink now, or pending (class A)."""
        device = addr[0][len(ADDR_PREFIX):]
        out = self.pacer.answer(device, data)
        if out is not None:
            self._queue(device, out)

    def _queue(self, device: str, data: bytes) -> None:
        self.outbox[device] = data        # newer replaces one not yet published
        self._wake.set()

    def on_message(self, topic: str, body: bytes) -> None:
        """One MQTT message on the uplink (or txack) subscription."""
        if topic.endswith("/event/txack"):
            device = self.topics.device_of(topic)
            more = self.pacer.txack(device)
            if more is not None:
                self._queue(device, more)
            return
        try:
            up = formats.parse_uplink(self.cfg.kind, body, self.cfg.marshaler)
        except formats.UplinkError as e:
            self.dropped += 1
            self.log.warning("lorawan_uplink_dropped", topic=topic[:120], why=str(e))
            return
        device = self.topics.device_of(topic) or up.device
        if not self.pacer.uplink(device, up.f_cnt, up.payload):
            self.log.debug("lorawan_duplicate", device=device, f_cnt=up.f_cnt)
            return
        if up.f_port == self.cfg.fport and up.payload:
            try:
                self.deliver(up.payload, pseudo_address(device, self.cfg.fport))
            except Exception as e:  # one bad datagram must never stop the service
                self.log.error("internal_error", where="lorawan_uplink",
                               error=type(e).__name__, detail=str(e)[:200])
        pending = self.pacer.flush(device)
        if pending is not None:
            self._queue(device, pending)

    # -- MQTT ----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Ends the MQTT loop within about STOP_GRACE seconds. A cancellation alone can be
        lost: aiomqtt's disconnect on the way out waits for the broker's answer and turns
        the CancelledError into an MqttError when the broker is gone too (both stopped
        at once), which the loop takes for an outage. Hence the flag, and a second
        cancel if the first did not end it."""
        self._stopping = True
        task = self._task
        if task is None:
            return
        for _ in range(2):
            task.cancel()
            done, _pending = await asyncio.wait({task}, timeout=STOP_GRACE)
            if done:
                if not task.cancelled():
                    task.exception()         # retrieved: the loop ended, B stops anyway
                return

    def _client(self) -> aiomqtt.Client:
        cfg = self.cfg
        return aiomqtt.Client(cfg.host, cfg.port, username=cfg.user or None,
                              password=cfg.password or None, identifier=self.identifier,
                              clean_session=False, tls_context=self.tls, keepalive=30,
                              timeout=10)

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        reported = False                  # the down line is written once per outage
        while not self._stopping:
            try:
                async with self._client() as client:
                    for topic in filter(None, (self.topics.uplinks(), self.topics.txacks())):
                        granted = await client.subscribe(topic, qos=self.qos)
                        # a broker that says so (mosquitto 2.0 on MQTT 3.1.1 grants a
                        # subscription its ACL denies and delivers nothing: docs/LORAWAN.md)
                        if any(_code(g) >= 0x80 for g in granted):
                            self.log.error("mqtt_subscribe_refused", broker=self.cfg.url,
                                           topic=topic, user=self.cfg.user or None,
                                           hint="the broker's ACL must let this user read it")
                    self.connected, reported, delay = True, False, BACKOFF_FIRST
                    self.connects += 1
                    self.log.info("mqtt_connected", broker=self.cfg.url, kind=self.cfg.kind,
                                  application=self.cfg.application, fport=self.cfg.fport,
                                  subscription=self.topics.uplinks())
                    publisher = asyncio.get_running_loop().create_task(self._publish(client))
                    try:
                        async for message in client.messages:
                            self.on_message(message.topic.value, _body(message.payload))
                    finally:
                        publisher.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await publisher
            except (aiomqtt.MqttError, OSError, ssl.SSLError) as e:
                if not reported:
                    self.log.warning("mqtt_down", broker=self.cfg.url, error=str(e)[:160],
                                     retry="every %g..%g s" % (delay, BACKOFF_MAX))
                    reported = True
            self.connected = False
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _publish(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.outbox:
                device, data = next(iter(self.outbox.items()))
                del self.outbox[device]
                body = formats.make_downlink(self.cfg.kind, device, self.cfg.fport, data,
                                             self.cfg.marshaler)
                try:
                    await client.publish(self.topics.downlink(device), body, qos=self.qos)
                except aiomqtt.MqttError:
                    self.outbox.setdefault(device, data)   # after the reconnect
                    raise


def _tls_context(cfg: LorawanConfig) -> ssl.SSLContext:
    """TLS to the broker: its CA (else the system's), and a client certificate if given.
    Unreadable files are one UserError line at start."""
    try:
        tls = ssl.create_default_context(cafile=cfg.ca_file or None)
        if cfg.cert_file:
            tls.load_cert_chain(cfg.cert_file, cfg.key_file)
    except (OSError, ssl.SSLError) as e:
        raise UserError(f"cannot use the MQTT TLS files ({e}): check --mqtt-ca, --mqtt-cert "
                        "and --mqtt-key (PEM)") from None
    return tls


def _code(granted: Any) -> int:
    """A SUBACK entry: the granted QoS (0..2) or a failure code (0x80 and up)."""
    return int(getattr(granted, "value", granted))


def _body(payload: Any) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return str(payload).encode()
