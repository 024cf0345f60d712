# boards/esp32/ttgo_lora32_v1/mpconfigvariant_PRODUCTION.cmake: the production build of this
# board: flash encryption and secure boot v2 (../sdkconfig.production says what each
# protects).
include(${MICROPY_BOARD_DIR}/../production.cmake)
