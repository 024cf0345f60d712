// boards/esp32/esp32_rak3172/mpconfigboard.h: the board's name as MicroPython reports it
// (os.uname().machine, the REPL banner).
#define MICROPY_HW_BOARD_NAME "ESP32 DevKit + RAK3172 (airshake)"
#define MICROPY_HW_MCU_NAME "ESP32"
