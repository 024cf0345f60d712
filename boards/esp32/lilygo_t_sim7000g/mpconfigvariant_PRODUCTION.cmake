# boards/esp32/lilygo_t_sim7000g/mpconfigvariant_PRODUCTION.cmake: the production build of this
# board: flash encryption and secure boot v2 (../sdkconfig.production says what each
# protects).
include(${MICROPY_BOARD_DIR}/../production.cmake)
