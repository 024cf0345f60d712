// boards/esp32/lilygo_t_sim7000g/mpconfigboard.h: the board's name as MicroPython reports it
// (os.uname().machine, the REPL banner).
#define MICROPY_HW_BOARD_NAME "LilyGO T-SIM7000G (airshake)"
#define MICROPY_HW_MCU_NAME "ESP32"
