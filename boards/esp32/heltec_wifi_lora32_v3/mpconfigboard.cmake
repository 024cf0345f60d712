# boards/esp32/heltec_wifi_lora32_v3/mpconfigboard.cmake: Heltec WiFi LoRa 32 (V3) (ESP32-S3FN8, 8 MiB flash, no PSRAM, SX1262 on SPI, console on the CP2102 USB-UART)
# for MicroPython's esp32 port (make -C ports/esp32 BOARD_DIR=<this folder>; see
# boards/README.md). The default build is the development one: the port's base ESP-IDF
# settings, no flash encryption, no secure boot, reflashable over USB. BOARD_VARIANT=PRODUCTION
# adds them (mpconfigvariant_PRODUCTION.cmake). BLE is left out (the firmware does not use it).
set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

# the production partition table (used by ../production.cmake)
set(AIRSHAKE_PARTITIONS partitions-8MiB-production.csv)

include(${MICROPY_BOARD_DIR}/../common.cmake)
