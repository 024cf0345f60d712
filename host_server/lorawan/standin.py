# host_server.lorawan.standin: a LoRaWAN network-server stand-in for the tests and the
# demo, between a radio side (the modem emulator's air, or UDP) and a real MQTT broker.
# It speaks ChirpStack v4's integration (UplinkEvent JSON from chirpstack_api's types,
# command/down) or The Things Stack v3's (up, down/push, down/replace) and applies the
# LoRaWAN rules of the link model (airshake_tools.linkemu.lorawan):
#   - an uplink longer than the data rate's payload limit is refused (the modem would);
#   - each uplink has a frame counter; a lost uplink (loss) leaves a gap; with
#     duplicates, the event is published twice (two gateways, deduplication missed);
#   - downlinks queue per device (push appends, replace empties the queue first) and leave
#     only in a receive window after an uplink: downlink(device, window) takes at most one,
#     RX1 at the uplink's DR, RX2 at DR0 on 869.525 MHz; one too long for the window's DR
#     is dropped and counted (a network server refuses it);
#   - the gateway's duty cycle (1 % in g1 for RX1, 10 % in g3 for RX2) on a clock that runs
#     `speedup` times faster than the wall clock: a closed sub-band skips the window.
# Counters (frames, bytes, modelled airtime) feed the tests' and the demo's figures.
# The MQTT side runs on its own asyncio loop in a thread and reconnects after a broker
# restart; the radio side calls uplink()/downlink()/pending() from any thread.
from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import aiomqtt

from airshake_tools.linkemu import lorawan as lw
from host_server.lorawan import formats

RX1_BAND, RX1_MHZ = "g1", 868.1


@dataclass
class Counters:
    uplinks: int = 0            # frames on the air from the devices (lost ones too)
    uplink_bytes: int = 0       # their FRMPayload bytes
    app_uplinks: int = 0        # of them on the airshake FPort
    lost_up: int = 0
    duplicated: int = 0
    refused_up: int = 0         # longer than the DR allows
    published: int = 0
    downlinks: int = 0          # frames sent in a receive window
    downlink_bytes: int = 0
    lost_down: int = 0
    too_long_down: int = 0
    duty_skipped: int = 0       # windows skipped because the gateway's sub-band was closed
    replaced: int = 0           # queue items dropped by a /down/replace
    airtime_up: float = 0.0     # modelled seconds on the air
    airtime_down: float = 0.0

    def snapshot(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class _Device:
    dev_eui: str
    name: str                   # in topics: DevEUI (ChirpStack) or device ID (TTS)
    f_cnt: int = 0
    f_cnt_down: int = 0
    queue: deque[bytes] = field(default_factory=deque)


class NetworkStandin:
    def __init__(self, kind: str, broker: tuple[str, int], application: str,
                 tenant: str = "", fport: int = 10, region: str = "EU868", dr: int = 0,
                 loss: float = 0.0, duplicates: float = 0.0, seed: int = 1,
                 duty_cycle: bool = True, speedup: float = 1.0) -> None:
        if kind not in formats.KINDS:
            raise ValueError("kind must be one of %s" % (formats.KINDS,))
        self.kind = kind
        self.broker = broker
        self.topics = formats.Topics(kind, application, tenant)
        self.application, self.tenant = application, tenant
        self.fport = fport
        self.region, self.dr = lw.region_name(region), dr
        self.limit = lw.max_payload(region, dr)
        self.loss, self.duplicates = loss, duplicates
        self.rng = random.Random(seed)
        self.duty = lw.DutyCycle() if duty_cycle else None
        self.speedup = speedup
        self.counters = Counters()
        self.devices: dict[str, _Device] = {}     # by topic name
        self.connects = 0
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._loop = asyncio.new_event_loop()
        self._out: asyncio.Queue[tuple[str, bytes]] | None = None
        self._thread = threading.Thread(target=self._run_loop, daemon=True,
                                        name="ns-standin")
        self._ready = threading.Event()
        self._stopped = False

    # -- radio side (any thread) -------------------------------------------------------------
    def _name(self, dev_eui: str) -> str:
        return dev_eui if self.kind == "chirpstack" else "dev-" + dev_eui

    def _device(self, dev_eui: str) -> _Device:
        dev_eui = dev_eui.lower()
        name = self._name(dev_eui)
        dev = self.devices.get(name)
        if dev is None:
            dev = self.devices[name] = _Device(dev_eui, name)
        return dev

    def now(self) -> float:
        """The modelled clock (duty cycle): wall seconds since start times speedup."""
        return (time.monotonic() - self._t0) * self.speedup

    def uplink(self, dev_eui: str, f_port: int, payload: bytes) -> bool:
        """A frame the device transmitted; False when it is longer than the DR allows."""
        with self._lock:
            c = self.counters
            if len(payload) > self.limit:
                c.refused_up += 1
                return False
            dev = self._device(dev_eui)
            dev.f_cnt += 1
            c.uplinks += 1
            c.uplink_bytes += len(payload)
            c.app_uplinks += f_port == self.fport and bool(payload)
            c.airtime_up += lw.frame_airtime(len(payload), self.region, self.dr)
            if self.rng.random() < self.loss:
                c.lost_up += 1
                return True
            copies = 2 if self.rng.random() < self.duplicates else 1
            c.duplicated += copies - 1
            f_cnt = dev.f_cnt
        body = self._uplink_body(dev, f_cnt, f_port, payload, copies)
        topic = self._uplink_topic(dev)
        for _ in range(copies):
            self._loop.call_soon_threadsafe(self._enqueue, topic, body)
        return True

    def pending(self, dev_eui: str) -> bool:
        with self._lock:
            return bool(self._device(dev_eui).queue)

    def downlink(self, dev_eui: str, window: int = 1) -> bytes | None:
        """What the network sends in this receive window (1 or 2) after an uplink."""
        with self._lock:
            c = self.counters
            dev = self._device(dev_eui)
            if not dev.queue:
                return None
            dr = self.dr if window == 1 else lw.RX2_DR
            band = RX1_BAND if window == 1 else lw.RX2_SUBBAND
            while dev.queue and len(dev.queue[0]) > lw.max_payload(self.region, dr):
                dev.queue.popleft()
                c.too_long_down += 1
            if not dev.queue:
                return None
            airtime = lw.frame_airtime(len(dev.queue[0]), self.region, dr, uplink=False)
            if self.duty is not None:
                now = self.now()
                if self.duty.wait(now, band) > 0:
                    c.duty_skipped += 1
                    return None
                self.duty.record(now, band, airtime)
            data = dev.queue.popleft()
            c.airtime_down += airtime
            if self.rng.random() < self.loss:
                c.lost_down += 1
                return None
            c.downlinks += 1
            c.downlink_bytes += len(data)
            dev.f_cnt_down += 1
            if self.kind == "chirpstack":   # the gateway's ack of the transmission
                body = formats.chirpstack_make_txack(self.application, dev.dev_eui,
                                                     dev.f_cnt_down)
                self._loop.call_soon_threadsafe(self._enqueue, self.topics.txack(dev.name),
                                                body)
            return data

    # -- MQTT side -----------------------------------------------------------------------------
    def _uplink_topic(self, dev: _Device) -> str:
        if self.kind == "chirpstack":
            return f"application/{self.application}/device/{dev.name}/event/up"
        app = f"{self.application}@{self.tenant}" if self.tenant else self.application
        return f"v3/{app}/devices/{dev.name}/up"

    def _uplink_body(self, dev: _Device, f_cnt: int, f_port: int, payload: bytes,
                     gateways: int) -> bytes:
        if self.kind == "chirpstack":
            return formats.chirpstack_make_uplink(self.application, dev.dev_eui, f_cnt,
                                                  f_port, payload, self.dr, gateways)
        return formats.tts_make_uplink(self.application, self.tenant, dev.name, dev.dev_eui,
                                       f_cnt, f_port, payload, self.dr, gateways)

    def _enqueue(self, topic: str, body: bytes) -> None:
        assert self._out is not None
        self._out.put_nowait((topic, body))

    def _on_downlink(self, topic: str, body: bytes) -> None:
        name = self.topics.device_of(topic)
        try:
            if self.kind == "chirpstack":
                _dev_eui, f_port, data = formats.chirpstack_parse_downlink(body)
                items = [(f_port, data)]
            else:
                items = formats.tts_parse_downlink(body)
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            dev = self.devices.get(name)
            if dev is None:
                return                 # a device this network never heard
            if topic.endswith("/down/replace"):
                self.counters.replaced += len(dev.queue)
                dev.queue.clear()
            dev.queue.extend(data for f_port, data in items if f_port == self.fport)

    async def _main(self) -> None:
        self._out = asyncio.Queue()
        self._ready.set()
        while not self._stopped:
            try:
                async with aiomqtt.Client(self.broker[0], self.broker[1],
                                          identifier="ns-standin-%d" % id(self),
                                          timeout=5) as client:
                    for topic in self.topics.downlinks():
                        await client.subscribe(topic, qos=1)
                    self.connects += 1
                    pub = asyncio.get_running_loop().create_task(self._publish(client))
                    try:
                        async for message in client.messages:
                            self._on_downlink(message.topic.value, bytes(message.payload))
                    finally:
                        pub.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await pub
            except aiomqtt.MqttError:
                pass
            await asyncio.sleep(0.2)

    async def _publish(self, client: aiomqtt.Client) -> None:
        assert self._out is not None
        while True:
            topic, body = await self._out.get()
            try:
                await client.publish(topic, body, qos=1)
            except aiomqtt.MqttError:
                self._out.put_nowait((topic, body))      # once the broker is back
                raise
            self.counters.published += 1

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        task = self._loop.create_task(self._main())
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(task)

    def start(self) -> NetworkStandin:
        self._thread.start()
        self._ready.wait(5)
        return self

    def wait_connected(self, timeout: float = 10.0, connects: int = 1) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connects >= connects:
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        self._stopped = True

        def cancel() -> None:
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(cancel)
            self._thread.join(5)

    def __enter__(self) -> NetworkStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
