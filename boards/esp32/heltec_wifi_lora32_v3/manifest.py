# boards/esp32/heltec_wifi_lora32_v3/manifest.py: what the heltec_wifi_lora32_v3 firmware freezes:
# the esp32 port's own modules (_boot.py mounts the filesystem, inisetup, flashbdev), the
# airshake firmware (../../frozen/manifest.py: asyncio, core, device app, radio
# adapters, boot.py, main.py) and the board's radio driver. The board data module
# (boards/heltec_wifi_lora32_v3.py) is not frozen: `airshake device deploy` copies it as board.py.
# ruff: noqa: F821 (freeze/include/require are the manifest's built-ins)
freeze("$(PORT_DIR)/modules")
include("../../frozen/manifest.py")
# the micropython-lib LoRa driver of the board's chip and its async API (what
# firmware/lib/radios/lora.py drives; deploy installs the same packages with mip)
require("lora-sx126x")
require("lora-async")
