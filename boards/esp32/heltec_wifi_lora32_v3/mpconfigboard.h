// boards/esp32/heltec_wifi_lora32_v3/mpconfigboard.h: the board's name as MicroPython reports it
// (os.uname().machine, the REPL banner).
#define MICROPY_HW_BOARD_NAME "Heltec WiFi LoRa 32 (V3) (airshake)"
#define MICROPY_HW_MCU_NAME "ESP32S3"
// the console is UART0 through the board's CP2102 USB-UART (not the S3's native USB)
#define MICROPY_HW_ENABLE_UART_REPL (1)
