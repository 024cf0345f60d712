# boards/esp32/ttgo_lora32_v1/mpconfigboard.cmake: LilyGO TTGO LoRa32 v1.0 (ESP32-D0WDQ6, 4 MiB flash, no PSRAM, SX1276 on SPI)
# for MicroPython's esp32 port (make -C ports/esp32 BOARD_DIR=<this folder>; see
# boards/README.md). The default build is the development one: the port's base ESP-IDF
# settings, no flash encryption, no secure boot, reflashable over USB. BOARD_VARIANT=PRODUCTION
# adds them (mpconfigvariant_PRODUCTION.cmake). BLE is left out (the firmware does not use it).
set(IDF_TARGET esp32)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
)

# the production partition table (used by ../production.cmake)
set(AIRSHAKE_PARTITIONS partitions-4MiB-production.csv)

include(${MICROPY_BOARD_DIR}/../common.cmake)
