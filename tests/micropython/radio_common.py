# tests/micropython/radio_common.py: what the radio test scripts share on the MicroPython
# unix binary: the JSON config from the test, sys.path (firmware/lib; the stand-in
# `machine` and `lora` of tools/linkemu/mp only when the config asks for them; the fake
# chips of tests/micropython/fakes when $AIRSHAKE_LORA_CHIP names some), a real board
# module from boards/ with the test's overrides, and one-line JSON output.
# CONFIG: {"board": "esp32_rak3172", "set": {"LORAWAN": {..merged..}, "LORA_CHIP": ..},
#          "config": {device config.json}, "fakes": bool, ...script-specific keys}
import json
import os
import sys


def setup():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    sys.path.insert(0, "firmware/lib")
    if cfg.get("fakes"):
        sys.path.insert(0, "tests/micropython/fakes")
        sys.path.insert(0, "tools/linkemu/mp")
    if os.getenv("AIRSHAKE_LORA_CHIP"):
        import fake_chips  # noqa: F401  (solders the chips on with the first SPI bus)
    sys.path.insert(0, "boards")
    board = __import__(cfg["board"])
    for name, value in (cfg.get("set") or {}).items():
        if isinstance(value, dict):
            merged = dict(getattr(board, name, None) or {})
            merged.update(value)
            value = merged
        setattr(board, name, value)
    return cfg, board


def emit(kind, **fields):
    fields["kind"] = kind
    print("RESULT " + json.dumps(fields))
