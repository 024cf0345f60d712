# boards/esp32/production.cmake: the PRODUCTION variant every board's
# mpconfigvariant_PRODUCTION.cmake includes. Adds flash encryption and secure boot v2
# (sdkconfig.production, what each protects is said there) and writes the two settings
# that are paths on the build host: the signing key (AIRSHAKE_SECURE_BOOT_KEY, checked
# by tools/build_firmware.py before the build starts) and the production partition table
# (AIRSHAKE_PARTITIONS, set by the board's mpconfigboard.cmake).
if(NOT DEFINED ENV{AIRSHAKE_SECURE_BOOT_KEY})
    message(FATAL_ERROR "a production build needs AIRSHAKE_SECURE_BOOT_KEY (the RSA-3072 signing key, boards/README.md)")
endif()
set(AIRSHAKE_PRODUCTION_PATHS ${CMAKE_BINARY_DIR}/sdkconfig.airshake_paths)
file(WRITE ${AIRSHAKE_PRODUCTION_PATHS}
    "CONFIG_SECURE_BOOT_SIGNING_KEY=\"$ENV{AIRSHAKE_SECURE_BOOT_KEY}\"\n"
    "CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${MICROPY_BOARD_DIR}/../${AIRSHAKE_PARTITIONS}\"\n")
list(APPEND SDKCONFIG_DEFAULTS ${MICROPY_BOARD_DIR}/../sdkconfig.production)
list(APPEND SDKCONFIG_DEFAULTS ${MICROPY_BOARD_DIR}/../sdkconfig.production_${IDF_TARGET})
list(APPEND SDKCONFIG_DEFAULTS ${AIRSHAKE_PRODUCTION_PATHS})
