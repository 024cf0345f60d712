# boards/esp32_rak3172.py: a generic ESP32 DevKit wired to a RAKwireless RAK3172
# (STM32WLE5 LoRaWAN module, RUI3 AT firmware) on UART1. The RAK3172's AT UART is
# 115200 8N1 by default (RAKwireless RUI3 / RAK3172 AT command manual,
# docs.rakwireless.com). Wiring (our choice, any free GPIOs work): ESP32 GPIO17 (TX) ->
# RAK3172 UART2_RX (PA3), GPIO16 (RX) <- UART2_TX (PA2), GPIO4 -> RAK3172 NRST, common
# GND and 3V3. ESP32 DevKit LED on GPIO2.
# A Seeed LoRa-E5 (Wio-E5, same STM32WLE5 chip, AT at 9600) fits the same wiring with
# LORAWAN["module"] = "lora-e5" and LORAWAN["baud"] = 9600.
NAME = "esp32_rak3172"
CHIP = "esp32"
RADIO = "lorawan"
PINS = {"uart_tx": 17, "uart_rx": 16, "module_reset": 4}
LORAWAN = {"module": "rak3172", "uart": 1, "tx": 17, "rx": 16, "baud": 115200,
           "reset": 4, "region": "EU868", "dr": 0, "port": 10}
LED = 2
SENSOR = "mcu_temperature"
DEEP_SLEEP = True

# held low within 3 s of a reset: opens a locked console, after erasing the key and
# the other secrets (firmware/lib/device/lock.py); the BOOT/PRG button
UNLOCK_PIN = 0
