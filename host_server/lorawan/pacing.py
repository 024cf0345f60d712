# host_server.lorawan.pacing: class A rules on B's side of a network server, sans-I/O.
# Per device (DevEUI or TTS device ID):
#   - an uplink is new once: (FCnt, payload) seen among the device's last RECENT uplinks is
#     a duplicate (several gateways, an MQTT redelivery) and changes nothing; an FCnt gap
#     (lost frames) or an FCnt that starts again (a rejoin) is just a new uplink;
#   - each new uplink, on any FPort, opens one receive window: it gives one credit; B's
#     answer leaves as a downlink only against a credit, so at most one downlink is queued
#     at the network server per uplink;
#   - an answer without a credit waits as the device's pending downlink; a fresher answer
#     replaces it (the older one is stale: the device pulls what it still misses with the
#     next fragment ack or retransmission), and the next uplink sends it;
#   - gated (ChirpStack, whose MQTT downlinks only append to the device's queue): after a
#     downlink is published nothing more is until the network server reports it sent
#     (txack), so a window the network could not use (duty cycle, a late answer) never
#     piles stale copies into its queue; after STALE_UPLINKS uplinks without a txack the
#     downlink is taken as lost. Ungated (The Things Stack's down/replace): the network
#     server's queue is replaced anyway. A pending answer equal to the downlink just
#     reported sent is dropped (B answered a repeat of the request it answered).
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

RECENT = 32           # (FCnt, payload) pairs remembered per device
STALE_UPLINKS = 3     # gated: uplinks without a txack before a downlink is taken as lost
MAX_DEVICES = 100000  # devices tracked, least recently heard dropped first


@dataclass
class _Device:
    recent: OrderedDict[tuple[int, bytes], None] = field(default_factory=OrderedDict)
    credit: bool = False
    pending: bytes | None = None
    outstanding: bool = False     # gated: published, not yet reported sent
    last: bytes | None = None     # gated: the downlink published last
    since: int = 0                # uplinks since it was published


@dataclass
class PacerStats:
    uplinks: int = 0
    duplicates: int = 0
    downlinks: int = 0
    replaced: int = 0        # pending answers superseded before they could leave
    txacks: int = 0
    presumed_lost: int = 0   # gated downlinks without a txack after STALE_UPLINKS uplinks


class ClassAPacer:
    def __init__(self, gated: bool = False, max_devices: int = MAX_DEVICES) -> None:
        self.gated = gated
        self.devices: OrderedDict[str, _Device] = OrderedDict()
        self.max_devices = max_devices
        self.stats = PacerStats()

    def _device(self, name: str) -> _Device:
        dev = self.devices.get(name)
        if dev is None:
            dev = self.devices[name] = _Device()
            if len(self.devices) > self.max_devices:
                self.devices.popitem(last=False)
        else:
            self.devices.move_to_end(name)
        return dev

    def uplink(self, device: str, f_cnt: int, payload: bytes) -> bool:
        """An uplink heard; False when it is a duplicate (drop it, no credit)."""
        dev = self._device(device)
        key = (f_cnt, bytes(payload))
        if key in dev.recent:
            self.stats.duplicates += 1
            return False
        dev.recent[key] = None
        if len(dev.recent) > RECENT:
            dev.recent.popitem(last=False)
        self.stats.uplinks += 1
        dev.credit = True
        if dev.outstanding:
            dev.since += 1
            if dev.since > STALE_UPLINKS:
                dev.outstanding = False
                self.stats.presumed_lost += 1
        return True

    def _take(self, dev: _Device, data: bytes) -> bytes:
        dev.credit = False
        dev.outstanding, dev.since = self.gated, 0
        dev.last = data if self.gated else None
        self.stats.downlinks += 1
        return data

    def answer(self, device: str, data: bytes) -> bytes | None:
        """B has data for the device: what to send now (None: it waits as pending)."""
        dev = self._device(device)
        if dev.credit and not dev.outstanding:
            return self._take(dev, data)
        if dev.pending is not None:
            self.stats.replaced += 1
        dev.pending = data
        return None

    def flush(self, device: str) -> bytes | None:
        """After an uplink was handed to B, or a txack: the pending answer, if it may go."""
        dev = self.devices.get(device)
        if dev is None or not dev.credit or dev.outstanding or dev.pending is None:
            return None
        data, dev.pending = dev.pending, None
        return self._take(dev, data)

    def txack(self, device: str) -> bytes | None:
        """The network server sent the device's downlink; what may follow now."""
        dev = self.devices.get(device)
        if dev is None:
            return None
        self.stats.txacks += 1
        dev.outstanding = False
        if dev.pending is not None and dev.pending == dev.last:
            dev.pending = None           # B's answer to a repeat of the same request: sent
        return self.flush(device)
