// boards/esp32/ttgo_lora32_v1/mpconfigboard.h: the board's name as MicroPython reports it
// (os.uname().machine, the REPL banner).
#define MICROPY_HW_BOARD_NAME "LilyGO TTGO LoRa32 v1.0 (airshake)"
#define MICROPY_HW_MCU_NAME "ESP32"
