# host_server.cert_store: the certificate store CS (store interface and backends, HTTP app,
# revocation bus, service runner, admin client and the `airshake cs` commands). This file
# holds only the defaults the modules share, so `airshake --help` stays light.
DEFAULT_PORT = 8470
DEFAULT_URL = "http://127.0.0.1:%d" % DEFAULT_PORT
TOKEN_ENV = "AIRSHAKE_ADMIN_TOKEN"
URL_ENV = "AIRSHAKE_CS_URL"
