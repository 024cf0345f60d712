# tests/micropython/fakes/lora_pair.py: the device side of tests/host/test_lora_drivers.py's
# two-chip test. Two boards in one process, each with its fake chip soldered on: a TTGO
# LoRa32 v1 (SX1276, fake_sx127x) and a Heltec WiFi LoRa 32 v3 (SX1262 with a 1.8 V TCXO,
# fake_sx126x; its pins moved by 100 so the two boards share none), both driven by
# firmware/lib/radios/lora.py on micropython-lib's real drivers, talking over the
# in-process air. Prints one RESULT line (JSON): what each radio received, its rssi/snr,
# the chips' own view (sent, heard, missed, errors, channel), and the time on air the
# chip computes from its registers beside the driver's get_time_on_air_us().
# Run from the checkout with MICROPYPATH=.frozen:<driver lib>:firmware/lib:tests/micropython/fakes:
# tools/linkemu/mp (the stand-in `machine`)
# (the twin finds the radio adapter frozen, as a board does).
# CONFIG: {"b_lora": {...LORA overrides for the Heltec...}, "toa_lengths": [n, ...]}
import json
import sys

import asyncio

sys.path.insert(0, "boards")

with open(sys.argv[1]) as f:
    CFG = json.load(f)

import fake_chips  # noqa: E402
from fake_sx127x import SX127x  # noqa: E402
from fake_sx126x import SX126x  # noqa: E402
from radios.lora import LoraRadio  # noqa: E402

ttgo = __import__("ttgo_lora32_v1")
heltec = __import__("heltec_wifi_lora32_v3")
heltec.PINS = dict((k, v if k == "spi" else v + 100) for k, v in heltec.PINS.items())


def wiring(pins, names):
    return dict((n, pins[n]) for n in names if n in pins)


CHIP_A = SX127x(wiring(ttgo.PINS, ("sck", "mosi", "miso", "cs", "reset", "dio0", "dio1")))
b_pins = wiring(heltec.PINS, ("sck", "mosi", "miso", "cs", "reset", "busy", "dio1"))
b_pins["tcxo"] = 1800
CHIP_B = SX126x(b_pins, "sx1262")


def chip_view(chip):
    return {"sent": [bytes(p).hex() for p in chip.sent], "heard": len(chip.heard),
            "missed": chip.missed, "errors": chip.errors, "channel": list(chip.channel())}


async def exchange(tx, rx, payload, wait):
    got = asyncio.create_task(rx.recv(wait))
    await asyncio.sleep_ms(20)
    await tx.send(payload)
    data = await got
    return {"data": None if data is None else data.hex(), "rssi": rx.rssi, "snr": rx.snr}


async def main():
    a = LoraRadio(ttgo, {})
    b = LoraRadio(heltec, {"lora": CFG.get("b_lora") or {}})
    await a.open()
    await b.open()
    out = {"a_to_b": await exchange(a, b, b"hello from an sx1276", 2.0),
           "b_to_a": await exchange(b, a, bytes(range(255)), 2.0)}
    out["toa"] = [[n, CHIP_A.toa_us(n), a._modem.get_time_on_air_us(n),
                   CHIP_B.toa_us(n), b._modem.get_time_on_air_us(n)]
                  for n in CFG.get("toa_lengths", ())]
    await a.close()
    await b.close()
    out["a"] = chip_view(CHIP_A)
    out["b"] = chip_view(CHIP_B)
    out["b_commands"] = len(CHIP_B.commands)
    out["chips"] = len(fake_chips.CHIPS)
    print("RESULT " + json.dumps(out))


asyncio.run(main())
