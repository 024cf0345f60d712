# boards/heltec_wifi_lora32_v3.py: Heltec WiFi LoRa 32 (V3) (ESP32-S3FN8 + SX1262).
# Pins from espressif/arduino-esp32 variants/heltec_wifi_lora_32_V3/pins_arduino.h
# (SS 8, SCK 9, MOSI 10, MISO 11, RST_LoRa 12, BUSY_LoRa 13, DIO1 14 (named DIO0 there),
# Vext 36, LED 35, OLED SDA 17 / SCL 18 / RST 21) and meshtastic/firmware
# variants/heltec_v3/variant.h (SX1262 IRQ on DIO1 14, BUSY 13, the TCXO powered from
# DIO3, Vext active low). TCXO voltage 1.8 V as in Heltec's and Meshtastic's code for
# this board: verify on hardware (a wrong value leaves the SX1262 without a clock).
NAME = "heltec_wifi_lora32_v3"
CHIP = "esp32s3"
RADIO = "lora"
PINS = {"spi": 1, "sck": 9, "mosi": 10, "miso": 11, "cs": 8, "reset": 12, "busy": 13,
        "dio1": 14, "vext": 36, "oled_sda": 17, "oled_scl": 18, "oled_reset": 21}
# Heard through a LoRa gateway (docs/LORA_GATEWAY.md): uplinks with normal IQ, sync word
# 0x12 (private; a gateway's packet forwarder then needs lorawan_public false), and
# downlinks received IQ-inverted, as LoRa gateways send them (the bridge's ipol).
LORA = {"freq_khz": 868100, "sf": 7, "bw": "125", "coding_rate": 5, "output_power": 14,
        "syncword": 0x12, "preamble_len": 8,
        "invert_iq_rx": True}
LORA_CHIP = "sx1262"
# SX1262 constructor extras (micropython-lib lora README, "S1261/SX1262" parameters)
SX126X = {"dio2_rf_sw": True, "dio3_tcxo_millivolts": 1800}
LED = 35
SENSOR = "mcu_temperature"
DEEP_SLEEP = True

# held low within 3 s of a reset: opens a locked console, after erasing the key and
# the other secrets (firmware/lib/device/lock.py); the BOOT/PRG button
UNLOCK_PIN = 0
