# boards/esp32/lilygo_t_sim7000g/manifest.py: what the lilygo_t_sim7000g firmware freezes:
# the esp32 port's own modules (_boot.py mounts the filesystem, inisetup, flashbdev), the
# airshake firmware (../../frozen/manifest.py: asyncio, core, device app, radio
# adapters, boot.py, main.py) and the board's radio driver. The board data module
# (boards/lilygo_t_sim7000g.py) is not frozen: `airshake device deploy` copies it as board.py.
# ruff: noqa: F821 (freeze/include/require are the manifest's built-ins)
freeze("$(PORT_DIR)/modules")
include("../../frozen/manifest.py")
# no micropython-lib radio driver: the board's modem is driven over UART by the
# firmware's own AT adapter (frozen with the rest of firmware/lib/radios)
