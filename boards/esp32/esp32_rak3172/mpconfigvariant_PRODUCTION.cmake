# boards/esp32/esp32_rak3172/mpconfigvariant_PRODUCTION.cmake: the production build of this
# board: flash encryption and secure boot v2 (../sdkconfig.production says what each
# protects).
include(${MICROPY_BOARD_DIR}/../production.cmake)
