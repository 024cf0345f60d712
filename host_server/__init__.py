# host_server: the CPython side of airshake: the CA, the certificate store CS, server B
# and the `airshake` command line. The protocol core is the `airshake` package.
