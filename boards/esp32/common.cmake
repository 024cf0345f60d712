# boards/esp32/common.cmake: what every airshake ESP32 board shares, included at the end
# of each board's mpconfigboard.cmake: the frozen manifest is the board's manifest.py,
# btree is left out (the firmware does not use it, and its berkeley-db submodule is then
# not needed), and micropython-lib comes from MPY_LIB_DIR when tools/build_firmware.py
# sets it (the MicroPython tarball has no lib/micropython-lib submodule).
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
set(MICROPY_PY_BTREE OFF)
if(DEFINED ENV{MPY_LIB_DIR})
    set(MICROPY_LIB_DIR $ENV{MPY_LIB_DIR})
endif()
