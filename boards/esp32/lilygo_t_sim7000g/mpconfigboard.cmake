# boards/esp32/lilygo_t_sim7000g/mpconfigboard.cmake: LilyGO T-SIM7000G (ESP32-WROVER-B, 4 MiB flash, 8 MiB PSRAM (4 MiB mapped), SIM7000G modem on UART1 (AT: firmware/lib/radios/cellular_at.py))
# for MicroPython's esp32 port (make -C ports/esp32 BOARD_DIR=<this folder>; see
# boards/README.md). The default build is the development one: the port's base ESP-IDF
# settings, no flash encryption, no secure boot, reflashable over USB. BOARD_VARIANT=PRODUCTION
# adds them (mpconfigvariant_PRODUCTION.cmake). BLE is left out (the firmware does not use it).
# the WROVER-B module's PSRAM (the port's sdkconfig.spiram): MicroPython's heap lives there

set(IDF_TARGET esp32)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.spiram
)

# the production partition table (used by ../production.cmake)
set(AIRSHAKE_PARTITIONS partitions-4MiB-production.csv)

include(${MICROPY_BOARD_DIR}/../common.cmake)
