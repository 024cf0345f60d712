# boards/ttgo_lora32_v1.py: LilyGO TTGO LoRa32 v1.0 (ESP32 + SX1276, 868/915 MHz,
# SSD1306 OLED). Pins from espressif/arduino-esp32 variants/ttgo-lora32-v1/pins_arduino.h
# (LORA_SCK 5, MISO 19, MOSI 27, CS 18, RST 14, IRQ=DIO0 26; OLED SDA 4, SCL 15, RST 16;
# LED_BUILTIN 2). DIO1 is not routed to the ESP32 on v1.0 (the driver polls for RX
# timeout). The SX1276 output is the PA_BOOST pin on these boards.
NAME = "ttgo_lora32_v1"
CHIP = "esp32"
RADIO = "lora"
PINS = {"spi": 1, "sck": 5, "mosi": 27, "miso": 19, "cs": 18, "reset": 14, "dio0": 26,
        "oled_sda": 4, "oled_scl": 15, "oled_reset": 16}
# micropython-lib lora configure() keys (micropython/lora/README.md "Configuration Keys")
# Heard through a LoRa gateway (docs/LORA_GATEWAY.md): uplinks with normal IQ, sync word
# 0x12 (private; a gateway's packet forwarder then needs lorawan_public false), and
# downlinks received IQ-inverted, as LoRa gateways send them (the bridge's ipol).
LORA = {"freq_khz": 868100, "sf": 7, "bw": "125", "coding_rate": 5, "output_power": 14,
        "syncword": 0x12, "preamble_len": 8, "tx_ant": "PA_BOOST",
        "invert_iq_rx": True}
LORA_CHIP = "sx1276"
LED = 2
SENSOR = "mcu_temperature"
DEEP_SLEEP = True

# held low within 3 s of a reset: opens a locked console, after erasing the key and
# the other secrets (firmware/lib/device/lock.py); the BOOT/PRG button
UNLOCK_PIN = 0
