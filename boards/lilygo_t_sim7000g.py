# boards/lilygo_t_sim7000g.py: LilyGO T-SIM7000G (ESP32-WROVER-B + SIMCom SIM7000G,
# LTE-M / NB-IoT / GPRS). Pins from Xinyuan-LilyGO/LilyGO-T-SIM7000G
# examples/Arduino_TinyGSM/AllFunctions/AllFunctions.ino: UART 115200 with
# SerialAT.begin(UART_BAUD, SERIAL_8N1, PIN_RX=26, PIN_TX=27) (ESP32 RX 26, TX 27),
# PWR_PIN 4 (through a level shifter: drive HIGH ~1 s, then LOW, to pulse PWRKEY),
# PIN_DTR 25, LED_PIN 12 (active low), SD card on 2/15/14/13.
NAME = "lilygo_t_sim7000g"
CHIP = "esp32"
RADIO = "cellular"
PINS = {"modem_tx": 27, "modem_rx": 26, "pwrkey": 4, "dtr": 25}
CELLULAR = {"module": "sim7000", "uart": 1, "tx": 27, "rx": 26, "baud": 115200,
            "pwrkey": 4, "dtr": 25, "apn": "iot"}
LED = 12
LED_ACTIVE_LOW = True
SENSOR = "mcu_temperature"
DEEP_SLEEP = True

# held low within 3 s of a reset: opens a locked console, after erasing the key and
# the other secrets (firmware/lib/device/lock.py); the BOOT/PRG button
UNLOCK_PIN = 0
