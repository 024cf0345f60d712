# boards/esp32/heltec_wifi_lora32_v3/mpconfigvariant_PRODUCTION.cmake: the production build of this
# board: flash encryption and secure boot v2 (../sdkconfig.production says what each
# protects).
include(${MICROPY_BOARD_DIR}/../production.cmake)
