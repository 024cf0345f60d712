# tests/micropython/radio_steps.py: drives one radio driver, built by radios.open_radio
# from a real board file, through the steps the test lists, and prints one RESULT line
# per step (errors included: the steps go on). With "debug" in the radio settings the
# driver's log lines ("airshake: at ...") are printed too; the test reads them.
# Usage: micropython tests/micropython/radio_steps.py CONFIG.json
# steps: ["open"] ["close"] ["send", hex] ["send_len", n] ["recv", seconds] ["poll"]
#        ["airtime"] (LoraRadio's duty-cycle state; CONFIG "airtime" restores one)
#        ["at", command, expect?, errors?] (raw, on the driver's AT channel) ["info"]
#        ["driver"] (what the stand-in lora driver was given) ["sleep", s]
import time
from binascii import hexlify, unhexlify

import asyncio
from radio_common import setup, emit


async def step(radio, s):
    op = s[0]
    if op == "open":
        await radio.open()
        return {"mtu": radio.mtu}
    if op == "close":
        await radio.close()
        return {}
    if op == "send":
        await radio.send(unhexlify(s[1]))
        return {}
    if op == "send_len":
        await radio.send(bytes(i & 0xFF for i in range(s[1])))
        return {}
    if op == "recv":
        data = await radio.recv(s[1])
        return {"data": None if data is None else hexlify(data).decode()}
    if op == "poll":
        await radio.poll()
        return {}
    if op == "at":
        args = [s[1]] + [tuple(a) for a in s[2:]]
        lines, final = await radio._ch.command(*args)
        return {"lines": lines, "final": final}
    if op == "driver":                   # the stand-in lora driver and fake machine
        import machine
        m = radio._modem
        return {"class": type(m).__name__, "cfg": m.configured,
                "pins": sorted(machine.PINS), "spi": [(x.id, x.baudrate) for x in machine.SPIS],
                "extras": [getattr(m, "tcxo_mv", None), getattr(m, "dio2_rf_sw", None)]}
    if op == "info":
        return {"mtu": radio.mtu, "rssi": getattr(radio, "rssi", None),
                "snr": getattr(radio, "snr", None), "pending": getattr(radio, "pending", None)}
    if op == "airtime":                  # the raw-LoRa duty-cycle budget's state
        return {"state": radio.airtime_state()}
    if op == "sleep":
        await asyncio.sleep(s[1])
        return {}
    raise ValueError("unknown step %r" % op)


async def main():
    cfg, board = setup()
    from radios import open_radio
    try:
        radio = open_radio(board, cfg["config"], None, cfg.get("airtime"))
    except Exception as e:
        emit("construct", ok=False, error=type(e).__name__, msg=str(e))
        return
    for s in cfg["steps"]:
        t0 = time.ticks_ms()
        try:
            out = await step(radio, s)
            out["ok"] = True
        except Exception as e:
            out = {"ok": False, "error": type(e).__name__, "msg": str(e)}
        out["ms"] = time.ticks_diff(time.ticks_ms(), t0)
        emit(s[0], **out)
    await radio.close()


asyncio.run(main())
