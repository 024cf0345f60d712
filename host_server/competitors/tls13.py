"""TLS 1.3 with mutual certificate authentication, measured with CPython's ssl (OpenSSL).

What this module owns: configuring OpenSSL contexts for the certificate profiles,
running real handshakes between an ssl client and an ssl server, cutting the bytes on the
wire into flights and TLS records, and timing handshakes in memory and over loopback TCP.

Rules:
- Sizes are TLS records as written by OpenSSL (5-byte record headers included), without
  TCP/IP. Flight 1 = ClientHello; flight 2 = ServerHello, [ChangeCipherSpec],
  EncryptedExtensions, CertificateRequest, Certificate, CertificateVerify, Finished;
  flight 3 = [ChangeCipherSpec], Certificate, CertificateVerify, Finished.
- Session tickets are off (num_tickets = 0), so nothing follows flight 3; with tickets=True
  the NewSessionTicket records are measured and returned separately, never in the flights.
- Both ends use verify_mode CERT_REQUIRED (the client also checks the host name), and a
  handshake counts only when both sides hold the verified peer certificate and application
  data went both ways.
- Each side sends its leaf only: server and device leaves come from two CAs, each the
  peer's trust anchor (see material(); with one shared CA OpenSSL also sends the CA).
- Profiles (tls13_certs.py): "minimal" = Ed25519 (OpenSSL signs the TLS 1.3
  CertificateVerify with ed25519), one-letter CNs (the client's host-name check matches the
  CN: no SAN); "minimal-p256" = the same with ECDSA P-256; "typical" = RSA-2048 with the
  usual extensions.
- middlebox_compat: OpenSSL's default (True) sends a 32-byte legacy_session_id and one
  6-byte ChangeCipherSpec record per side (RFC 8446 D.4); False turns that off.
"""

import multiprocessing
import os
import select
import socket
import ssl
import tempfile
import threading
import time

from .tls13_certs import PROFILES, material

__all__ = ["PROFILES", "material", "contexts", "handshake_in_memory", "tls13_handshake",
           "tls13_messages", "loopback_run", "tls13_handshakes_per_second", "split_records"]
RECORD_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}


# --- contexts ---------------------------------------------------------------------------

def _load_chain(ctx, cert_pem, key_pem):
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        with open(key_path, "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cert_path, key_path)


def _common(ctx, mat, role, tickets, middlebox_compat):
    peer = "client" if role == "server" else "server"
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=mat[peer + "_ca"].decode())
    _load_chain(ctx, mat[role + "_cert"], mat[role + "_key"])
    if not middlebox_compat:
        ctx.options &= ~ssl.OP_ENABLE_MIDDLEBOX_COMPAT
    if role == "server" and not tickets:
        ctx.num_tickets = 0
    return ctx


def contexts(profile="minimal", tickets=False, middlebox_compat=True, shared_ca=False,
             mat=None):
    """(client_context, server_context) for a profile (or for the given material)."""
    mat = mat or material(profile, shared_ca)
    client = _common(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), mat, "client", tickets,
                     middlebox_compat)
    server = _common(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), mat, "server", tickets,
                     middlebox_compat)
    return client, server


# --- one handshake in memory ------------------------------------------------------------

def split_records(data):
    """[(content_type, record_length_including_header)] of a run of TLS records."""
    records, i = [], 0
    while i < len(data):
        if i + 5 > len(data):
            raise ValueError("truncated TLS record header")
        length = int.from_bytes(data[i + 3:i + 5], "big")
        if i + 5 + length > len(data):
            raise ValueError("truncated TLS record")
        records.append((data[i], 5 + length))
        i += 5 + length
    return records


def _step(obj):
    """Advance one end; True once its handshake is complete."""
    try:
        obj.do_handshake()
        return True
    except ssl.SSLWantReadError:
        return False


def handshake_in_memory(client_ctx, server_ctx, host):
    """Runs one full handshake between two SSLObjects joined by MemoryBIOs. Returns
    (flights, post_handshake_bytes, client_obj, server_obj); flights is a list of
    (direction, bytes) with direction "c>s" or "s>c", consecutive writes of one direction
    merged. Raises ssl.SSLError if either side refuses the other."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    cli = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname=host)
    srv = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    flights = []

    def carry(direction, src, dst):
        data = src.read()
        if data:
            dst.write(data)
            if flights and flights[-1][0] == direction:
                flights[-1] = (direction, flights[-1][1] + data)
            else:
                flights.append((direction, data))
        return bool(data)

    cli_done = srv_done = False
    for _ in range(10):  # a TLS 1.3 handshake needs 3 rounds; 10 bounds a bug
        cli_done = cli_done or _step(cli)
        carry("c>s", c_out, s_in)
        srv_done = srv_done or _step(srv)
        carry("s>c", s_out, c_in)  # after the server's last step: NewSessionTicket, if any
        if cli_done and srv_done:
            break
    if not (cli_done and srv_done):
        raise RuntimeError("TLS handshake did not complete")
    post = b""
    if len(flights) > 3:  # NewSessionTicket, sent by the server after flight 3
        post = b"".join(data for _, data in flights[3:])
        flights = flights[:3]
    # Application data both ways proves both sides hold the same traffic keys.
    cli.write(b"ping")
    s_in.write(c_out.read())
    if srv.read(4) != b"ping":
        raise RuntimeError("server did not read the client's data")
    srv.write(b"pong")
    c_in.write(s_out.read())
    if cli.read(4) != b"pong":
        raise RuntimeError("client did not read the server's data")
    return flights, post, cli, srv


def tls13_handshake(certs="minimal", tickets=False, middlebox_compat=True, shared_ca=False):
    """One checked handshake; a dict with flights (bytes per flight), records per flight
    [(type name, bytes)], post_handshake (NewSessionTicket bytes), cipher, cert sizes."""
    mat = material(certs, shared_ca)
    client_ctx, server_ctx = contexts(certs, tickets, middlebox_compat, shared_ca)
    flights, post, cli, srv = handshake_in_memory(client_ctx, server_ctx, mat["host"])
    assert [d for d, _ in flights] == ["c>s", "s>c", "c>s"], "not three flights"
    assert cli.version() == srv.version() == "TLSv1.3"
    server_der = ssl.PEM_cert_to_DER_cert(mat["server_cert"].decode())
    client_der = ssl.PEM_cert_to_DER_cert(mat["client_cert"].decode())
    # Both ends verified (CERT_REQUIRED) and hold the other's leaf.
    assert cli.getpeercert(binary_form=True) == server_der
    assert srv.getpeercert(binary_form=True) == client_der
    assert cli.getpeercert() and srv.getpeercert(), "peer certificate not verified"
    return {
        "flights": [len(data) for _, data in flights],
        "records": [[(RECORD_TYPES.get(t, str(t)), n) for t, n in split_records(data)]
                    for _, data in flights],
        "post_handshake": len(post),
        "cipher": cli.cipher()[0],
        "server_cert_der": mat["server_der"],
        "client_cert_der": mat["client_der"],
        "server_ca_der": mat["server_ca_der"],
        "client_ca_der": mat["client_ca_der"],
    }


def tls13_messages(certs="minimal", middlebox_compat=True):
    """Bytes per flight [ClientHello, server flight, client flight] as TLS records."""
    return tls13_handshake(certs, False, middlebox_compat)["flights"]


# --- throughput -------------------------------------------------------------------------

def _memory_rate(seconds, certs, side, middlebox_compat):
    client_ctx, server_ctx = contexts(certs, False, middlebox_compat)
    host = material(certs)["host"]
    clock = time.thread_time  # CPU time of this thread: one core, not diluted by other load
    count, server_time = 0, 0.0
    start = clock()
    deadline = time.perf_counter() + seconds
    while True:
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        cli = client_ctx.wrap_bio(c_in, c_out, server_hostname=host)
        t0 = clock()
        srv = server_ctx.wrap_bio(s_in, s_out, server_side=True)
        server_time += clock() - t0
        _step(cli)  # ClientHello
        s_in.write(c_out.read())
        t0 = clock()
        _step(srv)  # server flight
        server_time += clock() - t0
        c_in.write(s_out.read())
        if not _step(cli):  # client flight
            raise RuntimeError("client did not finish")
        s_in.write(c_out.read())
        t0 = clock()
        done = _step(srv)
        server_time += clock() - t0
        if not done or srv.getpeercert(binary_form=True) is None:
            raise RuntimeError("server did not finish")
        count += 1
        if time.perf_counter() >= deadline:
            break
    return count / (server_time if side == "server" else clock() - start)


def _server_main(conn, mat, middlebox_compat, cpu):
    """Loopback server process: one thread, pinned to one CPU, handshakes one connection at
    a time. Pipe commands: "mark" starts the measured window, "stop" returns
    (handshakes, cpu_seconds, wall_seconds, errors) from the mark to the last handshake
    completed, and exits."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    _, server_ctx = contexts(tickets=False, middlebox_compat=middlebox_compat, mat=mat)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(256)
    conn.send(lsock.getsockname()[1])
    count = errors = 0
    mark = last = (0, 0, time.process_time(), time.perf_counter())
    while True:
        ready, _, _ = select.select([lsock, conn], [], [], 1.0)
        if conn in ready:
            command = conn.recv()
            if command == "mark":
                mark = (count, errors, time.process_time(), time.perf_counter())
                conn.send("ok")
            else:
                conn.send((last[0] - mark[0], last[2] - mark[2], last[3] - mark[3],
                           errors - mark[1]))
                break
        if lsock in ready:
            sock, _ = lsock.accept()
            sock.settimeout(5.0)
            try:
                tls = server_ctx.wrap_socket(sock, server_side=True)
                tls.sendall(b"k")  # tells the client that its certificate was accepted
                tls.close()
                count += 1
                last = (count, errors, time.process_time(), time.perf_counter())
            except (ssl.SSLError, OSError):
                errors += 1
                sock.close()
    lsock.close()


def _client_loop(client_ctx, host, port, stop, failures):
    try:
        while not stop.is_set():
            with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
                with client_ctx.wrap_socket(sock, server_hostname=host) as tls:
                    if tls.recv(1) != b"k":
                        raise RuntimeError("server closed without accepting the handshake")
    except Exception as exc:  # reported by loopback_run, never swallowed
        failures.append(exc)
        stop.set()


def loopback_run(seconds=2.0, certs="minimal", middlebox_compat=True, clients=2):
    """Full handshakes over real TCP on 127.0.0.1 against a server in its own process pinned
    to one CPU (the client threads here are pinned to the other CPUs while this runs).
    Returns handshakes, the server's CPU seconds and wall seconds in the measured window,
    server errors, and the rates per server CPU-second and per wall second."""
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu = cpus[0]
    client_cpus = set(cpus[1:]) or {server_cpu}
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    mat = material(certs)
    proc = ctx.Process(target=_server_main, args=(child, mat, middlebox_compat, server_cpu),
                       daemon=True)
    proc.start()
    saved = os.sched_getaffinity(0)
    stop = threading.Event()
    threads = []
    try:
        if not parent.poll(30):
            raise RuntimeError("loopback server did not start")
        port = parent.recv()
        os.sched_setaffinity(0, client_cpus)
        client_ctx, _ = contexts(middlebox_compat=middlebox_compat, mat=mat)
        failures = []
        threads = [threading.Thread(target=_client_loop,
                                    args=(client_ctx, mat["host"], port, stop, failures),
                                    daemon=True)
                   for _ in range(clients)]
        for t in threads:
            t.start()
        time.sleep(min(0.5, seconds / 4))  # warm-up: connections and caches
        parent.send("mark")
        parent.recv()
        time.sleep(seconds)
        stop.set()  # clients finish the handshake under way, then stop
        for t in threads:
            t.join(10)
        parent.send("stop")
        handshakes, cpu_s, wall_s, errors = parent.recv()
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        os.sched_setaffinity(0, saved)
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
    if failures:
        raise RuntimeError("loopback client failed: %r" % (failures[0],))
    if errors or not handshakes:
        raise RuntimeError("loopback server: %d handshakes, %d errors" % (handshakes, errors))
    return {
        "handshakes": handshakes, "server_cpu_s": cpu_s, "server_wall_s": wall_s,
        "errors": errors, "per_server_cpu_second": handshakes / cpu_s if cpu_s else 0.0,
        "per_wall_second": handshakes / wall_s, "server_cpu": server_cpu,
        "client_cpus": sorted(client_cpus),
    }


def tls13_handshakes_per_second(seconds=2.0, certs="minimal", over="memory", side=None,
                                middlebox_compat=True):
    """Full mutually authenticated TLS 1.3 handshakes per second on one core.
    over="memory": both ends in this process, one thread, per CPU-second of that thread
    (time.thread_time, so other load on the machine does not dilute it). side="both"
    (default) counts the whole loop (client + server work); side="server" counts only the
    CPU time spent inside the server's calls.
    over="loopback": real TCP on 127.0.0.1; the server runs in its own process pinned to one
    CPU; the result is handshakes per CPU-second of that server process (accept, handshake,
    1-byte reply, close), i.e. its per-core throughput (loopback_run gives the details)."""
    if over == "memory":
        return _memory_rate(seconds, certs, side or "both", middlebox_compat)
    if over == "loopback":
        return loopback_run(seconds, certs, middlebox_compat)["per_server_cpu_second"]
    raise ValueError("over must be 'memory' or 'loopback'")
