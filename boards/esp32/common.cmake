# boards/esp32/common.cmake: what every airshake ESP32 board shares, included at the end
# of each board's mpconfigboard.cmake: the frozen manifest is the board's manifest.py,
# btree is left out (the firmware does not use it, and its berkeley-db submodule is then
# not needed), and micropython-lib comes from MPY_LIB_DIR when tools/build_firmware.py
# sets it (the MicroPython tarball has no lib/micropython-lib submodule), and the
# ucryptography C module with the Mbed TLS options it needs (below).
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
set(MICROPY_PY_BTREE OFF)
if(DEFINED ENV{MPY_LIB_DIR})
    set(MICROPY_LIB_DIR $ENV{MPY_LIB_DIR})
endif()

# ucryptography (the `cryptography` C module: Mbed TLS's P-256, RSA and SHA-2 for the
# `ucrypto` backend; docs/CRYPTO.md says which primitives a device takes from it) as a
# user C module, when tools/build_firmware.py gives its folder in AIRSHAKE_UCRYPTOGRAPHY.
# On the esp32 port Mbed TLS is ESP-IDF's component, configured by sdkconfig rather than
# by ucryptography's patch of MicroPython's extmod config (that patch is the unix twin's):
# the fragment below asks for what the module and airshake use, most of it ESP-IDF's
# default already; NIST_OPTIM is what makes P-256 fast (docs/CRYPTO.md).
if(DEFINED ENV{AIRSHAKE_UCRYPTOGRAPHY})
    set(USER_C_MODULES $ENV{AIRSHAKE_UCRYPTOGRAPHY}/micropython.cmake)
    set(AIRSHAKE_UCRYPTO_SDKCONFIG ${CMAKE_BINARY_DIR}/sdkconfig.airshake_ucrypto)
    file(WRITE ${AIRSHAKE_UCRYPTO_SDKCONFIG}
        "CONFIG_MBEDTLS_ECP_C=y\n"
        "CONFIG_MBEDTLS_ECDH_C=y\n"
        "CONFIG_MBEDTLS_ECDSA_C=y\n"
        "CONFIG_MBEDTLS_ECP_DP_SECP256R1_ENABLED=y\n"
        "CONFIG_MBEDTLS_ECP_NIST_OPTIM=y\n"
        "CONFIG_MBEDTLS_SHA512_C=y\n"
        "CONFIG_MBEDTLS_GCM_C=y\n"
        "CONFIG_MBEDTLS_PEM_PARSE_C=y\n"
        "CONFIG_MBEDTLS_PEM_WRITE_C=y\n"
        "CONFIG_MBEDTLS_HARDWARE_MPI=y\n"
        "CONFIG_MBEDTLS_HARDWARE_SHA=y\n")
    list(APPEND SDKCONFIG_DEFAULTS ${AIRSHAKE_UCRYPTO_SDKCONFIG})
endif()
