# boards/esp32/ttgo_lora32_v1/manifest.py: what the ttgo_lora32_v1 firmware freezes:
# the esp32 port's own modules (_boot.py mounts the filesystem, inisetup, flashbdev), the
# airshake firmware (../../frozen/manifest.py: asyncio, core, device app, radio
# adapters, boot.py, main.py) and the board's radio driver. The board data module
# (boards/ttgo_lora32_v1.py) is not frozen: `airshake device deploy` copies it as board.py.
# ruff: noqa: F821 (freeze/include/require are the manifest's built-ins)
freeze("$(PORT_DIR)/modules")
include("../../frozen/manifest.py")
# the micropython-lib LoRa driver of the board's chip and its async API (what
# firmware/lib/radios/lora.py drives; deploy installs the same packages with mip)
require("lora-sx127x")
require("lora-async")
